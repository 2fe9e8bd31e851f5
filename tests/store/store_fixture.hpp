// A temporary directory holding a fresh SQLite store per test.
#pragma once

#include <jeweler/store/sqlite_repository.hpp>

#include <gtest/gtest.h>

#include <filesystem>
#include <memory>
#include <random>
#include <string>

namespace jeweler::store::test {

inline std::filesystem::path make_temp_dir() {
  std::random_device rd;
  auto dir = std::filesystem::temp_directory_path() /
             ("jeweler-store-" + std::to_string(rd()) + std::to_string(rd()));
  std::filesystem::create_directories(dir);
  return dir;
}

class StoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = make_temp_dir();
    options_.database_path = (dir_ / "db" / "jeweler.db").string();
    auto r = SqliteRepository::open(options_);
    ASSERT_TRUE(r) << r.error().message();
    repo_ = std::move(*r);
  }
  void TearDown() override {
    repo_.reset();
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }

  std::filesystem::path dir_;
  Options options_;
  std::unique_ptr<SqliteRepository> repo_;
};

}  // namespace jeweler::store::test
