// A program outside the tree that uses the installed jeweler::redis.
#include <jeweler/redis/client.hpp>

#include <boost/asio/io_context.hpp>

#include <iostream>

int main() {
  auto cfg = jeweler::redis::Config::from_url("redis://example.org:6390/2");
  boost::asio::io_context io;
  auto client = jeweler::redis::make_client(io.get_executor(), cfg);
  std::cout << "consumer ok: " << client->config().describe() << "\n";
  client.reset();
  io.run_for(std::chrono::milliseconds(10));
  return 0;
}
