// The platform API module of jeweler-server (API.md sections 2-4), plugged
// into the App by main.cpp. docs/routes.md describes the design.
#pragma once

#include <jeweler/app/app.hpp>
#include <jeweler/app/config.hpp>

namespace jeweler::app::routes {

/// Validates every setting the module reads (session, cache, rate-limit and
/// store options) so a bad value stops start-up with a message naming it.
/// Throws redis::ConfigError / std::invalid_argument.
void check_config(const ServerConfig& cfg);

/// The module: process-wide services in init_process (store, demo data,
/// statistics), per-thread services, middleware and routes in init_thread.
RouteModule module();

}  // namespace jeweler::app::routes
