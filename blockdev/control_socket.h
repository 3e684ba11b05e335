// Control socket of an astrafs-ublk server: how a second `astrafs-ublk add` (or recover, del,
// status) reaches the process that already holds the pool, since a pool is opened by one process.
//
// Path: <run dir>/pool-<16 hex digits>.sock, the digits an FNV-1a hash of the pool's member paths
// (canonical, sorted), so every invocation naming the same members finds the same server.
// Protocol: one request line per connection ("add VOLUME SIZE QUEUES DEPTH WORKERS USERCOPY",
// "recover N", "del N", "status"); the reply is "ok TEXT" or "err MESSAGE", then EOF.
#pragma once

#include <string>
#include <vector>

#include "astra/result.h"
#include "astra/status.h"

namespace astra::blockdev {

// Canonical member paths (realpath when they exist), sorted.
std::vector<std::string> CanonicalMembers(const std::vector<std::string>& members);
std::string ControlSocketPath(const std::vector<std::string>& canonical_members);

// Sends one request to the server listening at `path`. kNotFound when no server listens there
// (absent or stale socket); otherwise the server's reply ("ok ..." / "err ...").
Result<std::string> SendRequest(const std::string& path, const std::string& request);

// Binds and listens at `path`, replacing a stale socket. Returns the listening fd.
Result<int> ListenControlSocket(const std::string& path);
// Reads one request line from an accepted connection (bounded).
Result<std::string> ReadRequest(int fd);
void WriteReply(int fd, const std::string& reply);

}  // namespace astra::blockdev
