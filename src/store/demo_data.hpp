// --demo-data (API.md sections 7 and 8): the two demo tenants and their users,
// plus deterministic business data — customers, products, thousands of
// invoices over the past year, gold prices — relative to "now" so the KPI of
// today and of this month are never empty. See docs/store.md for the figures.
#pragma once

#include <jeweler/core/errc.hpp>
#include <jeweler/store/repository.hpp>

#include <cstdint>

namespace jeweler::store {

struct DemoSize {
  int customers = 400;  // per tenant (argent gets 5/8 of each figure)
  int products = 300;
  int invoices = 6000;
};

/// The dataset (hashes the 4 demo passwords: ~0.3 s). Same `now_ms` and
/// sizes → same data, apart from the password salts.
Dataset make_demo_dataset(std::int64_t now_ms, const DemoSize& size = {});

/// Loads the demo data when the store is empty (one transaction). Returns
/// true when it loaded it, false when the store already held data (left as it is).
Result<bool> load_demo_data(Repository& repo, std::int64_t now_ms, const DemoSize& size = {});

}  // namespace jeweler::store
