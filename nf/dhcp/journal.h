// The lease journal: what makes an ACK durable.
//
// Theory of operation
// -------------------
// Files in the journal directory:
//   leases.snap        a compacted image of every live lease; its first record (kSnapshot)
//                      names the first journal segment it does not include
//   journal.NNNNNNNN   segments of records appended in order, one per run or compaction
//   LOCK               flock()ed while nf runs, so two instances never share a journal
//
// append() writes a group of records with one write(2) and one fdatasync(2) (group commit);
// the caller releases the ACKs of the group only after it returns. Recovery (open()) loads
// the snapshot, then every later segment in order; the last record for an address wins. A
// record that fails its check is reported with file and offset and skipped; at the end of the
// last segment that is the normal trace of a crash in mid-write (a torn tail), which is cut
// off so that the next run appends cleanly. A bad record never hides the records around it.
//
// Compaction runs without stopping appends: the writer switches to a new segment, hands a
// copy of the live state to a background thread, which writes leases.snap.tmp, fsyncs it,
// renames it over leases.snap, fsyncs the directory, and only then removes the segments the
// new snapshot covers. A crash at any point leaves either the old snapshot and all its
// segments, or the new one and the segments after it.
//
// Not on the fast path: this runs on the journal thread (nf/dhcp/service.h) and at start.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "nf/dhcp/record.h"

namespace nf::dhcp {

struct RecoveryReport {
  uint64_t records = 0;               // good records read
  uint64_t bad_records = 0;           // damaged records skipped (not counting a torn tail)
  uint64_t torn_bytes = 0;            // cut from the end of the last segment
  uint64_t live = 0;                  // leases bound or declined after replay
  std::vector<std::string> messages;  // one line per finding, with file and offset
};

class Journal {
 public:
  ~Journal();
  // Opens (creating) `dir`, recovers its state, starts a new segment. "" or an error.
  std::string open(const std::string& dir, bool sync, RecoveryReport& report);

  // The durable state: the last record for every address (a copy; any thread).
  std::vector<LeaseRecord> state() const;
  // The last record for one address, if any (any thread).
  bool record_for(uint32_t addr, LeaseRecord& out) const;

  // Appends records (sealing them with sequence numbers) and makes them durable. Returns
  // false on an I/O error (the caller must then not acknowledge them).
  bool append(std::span<LeaseRecord> recs);

  // Starts a compaction if `every` records were appended since the last one and none runs.
  void maybe_compact(uint64_t every);
  // Waits for a running compaction (tests, shutdown).
  void wait_compaction();

  uint64_t appended() const { return appended_; }
  uint64_t syncs() const { return syncs_; }
  uint64_t compactions() const { return compactions_.load(); }
  uint32_t segment() const { return segment_; }
  const std::string& last_error() const { return error_; }
  const std::string& dir() const { return dir_; }

 private:
  std::string open_segment(uint32_t n);

  std::string dir_;
  bool sync_ = true;
  int lock_fd_ = -1;
  int fd_ = -1;
  uint32_t segment_ = 0;
  uint32_t oldest_ = 0;  // the first segment a compaction may still have to remove
  uint64_t seq_ = 0;
  uint64_t appended_ = 0;
  uint64_t syncs_ = 0;
  uint64_t since_compaction_ = 0;
  mutable std::mutex mu_;  // state_: the journal thread writes, the control socket reads
  std::unordered_map<uint32_t, LeaseRecord> state_;
  std::thread compactor_;
  std::atomic<bool> compacting_{false};
  std::atomic<uint64_t> compactions_{0};
  std::string error_;
};

}  // namespace nf::dhcp
