#include "nf/dhcp/journal.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>

namespace nf::dhcp {
namespace {

std::string errstr(const std::string& what) {
  return what + ": " + std::strerror(errno);
}

std::string seg_name(uint32_t n) {
  char b[32];
  std::snprintf(b, sizeof b, "journal.%08u", n);
  return b;
}

bool write_all(int fd, const void* p, size_t n) {
  const auto* c = static_cast<const uint8_t*>(p);
  while (n) {
    ssize_t w = ::write(fd, c, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    c += w;
    n -= static_cast<size_t>(w);
  }
  return true;
}

bool read_file(const std::string& path, std::vector<uint8_t>& out) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  struct stat st {};
  fstat(fd, &st);
  out.resize(static_cast<size_t>(st.st_size));
  size_t got = 0;
  while (got < out.size()) {
    ssize_t r = ::read(fd, out.data() + got, out.size() - got);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break;
    got += static_cast<size_t>(r);
  }
  out.resize(got);
  ::close(fd);
  return true;
}

void fsync_dir(const std::string& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd >= 0) {
    ::fsync(fd);
    ::close(fd);
  }
}

void apply_record(std::unordered_map<uint32_t, LeaseRecord>& st, const LeaseRecord& r) {
  if (r.type == RecType::kBind || r.type == RecType::kRelease || r.type == RecType::kDecline)
    st[r.addr] = r;
}

}  // namespace

Journal::~Journal() {
  wait_compaction();
  if (fd_ >= 0) ::close(fd_);
  if (lock_fd_ >= 0) ::close(lock_fd_);
}

std::vector<LeaseRecord> Journal::state() const {
  std::lock_guard<std::mutex> g(mu_);
  std::vector<LeaseRecord> v;
  v.reserve(state_.size());
  for (const auto& [a, r] : state_) v.push_back(r);
  return v;
}

bool Journal::record_for(uint32_t addr, LeaseRecord& out) const {
  std::lock_guard<std::mutex> g(mu_);
  auto it = state_.find(addr);
  if (it == state_.end()) return false;
  out = it->second;
  return true;
}

std::string Journal::open_segment(uint32_t n) {
  const std::string path = dir_ + "/" + seg_name(n);
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
  if (fd < 0) return errstr(path);
  if (fd_ >= 0) ::close(fd_);
  fd_ = fd;
  segment_ = n;
  fsync_dir(dir_);  // the new name itself must survive a crash
  return "";
}

std::string Journal::open(const std::string& dir, bool sync, RecoveryReport& rep) {
  dir_ = dir;
  sync_ = sync;
  // mkdir -p
  for (size_t i = 1; i <= dir.size(); ++i)
    if (i == dir.size() || dir[i] == '/') {
      std::string part = dir.substr(0, i);
      if (::mkdir(part.c_str(), 0750) < 0 && errno != EEXIST) return errstr(part);
    }
  lock_fd_ = ::open((dir + "/LOCK").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0640);
  if (lock_fd_ < 0) return errstr(dir + "/LOCK");
  if (::flock(lock_fd_, LOCK_EX | LOCK_NB) < 0)
    return dir + ": the lease journal is in use by another process";

  // The snapshot.
  uint32_t first_seg = 0;
  std::vector<uint8_t> buf;
  const std::string snap = dir + "/leases.snap";
  if (read_file(snap, buf)) {
    const size_t n = buf.size() / sizeof(LeaseRecord);
    for (size_t i = 0; i < n; ++i) {
      LeaseRecord r;
      std::memcpy(&r, buf.data() + i * sizeof r, sizeof r);
      if (!r.valid()) {
        rep.bad_records++;
        rep.messages.push_back(snap + ": damaged record at offset " + std::to_string(i * sizeof r) +
                               " skipped");
        continue;
      }
      rep.records++;
      if (r.type == RecType::kSnapshot) {
        first_seg = static_cast<uint32_t>(r.seq);
        continue;
      }
      seq_ = std::max(seq_, r.seq);
      apply_record(state_, r);
    }
    if (buf.size() % sizeof(LeaseRecord))
      rep.messages.push_back(snap + ": " + std::to_string(buf.size() % sizeof(LeaseRecord)) +
                             " stray bytes at the end ignored");
  }

  // The segments after it, in order.
  std::vector<uint32_t> segs;
  if (DIR* d = ::opendir(dir.c_str())) {
    while (dirent* e = ::readdir(d)) {
      unsigned n = 0;
      char tail = 0;
      if (std::sscanf(e->d_name, "journal.%8u%c", &n, &tail) == 1 && std::strlen(e->d_name) == 16)
        segs.push_back(n);
    }
    ::closedir(d);
  }
  std::sort(segs.begin(), segs.end());
  uint32_t next = first_seg;
  oldest_ = segs.empty() ? first_seg : std::min(first_seg, segs.front());
  for (size_t si = 0; si < segs.size(); ++si) {
    const uint32_t sn = segs[si];
    next = std::max(next, sn + 1);
    const std::string path = dir + "/" + seg_name(sn);
    if (sn < first_seg) {  // a compaction finished but did not get to remove it
      ::unlink(path.c_str());
      continue;
    }
    if (!read_file(path, buf)) {
      rep.messages.push_back(errstr(path));
      continue;
    }
    const size_t whole = buf.size() / sizeof(LeaseRecord);
    // The last good record: everything bad after it in the last segment is a torn tail.
    size_t last_good = 0;
    bool any_good = false;
    std::vector<bool> ok(whole);
    for (size_t i = 0; i < whole; ++i) {
      LeaseRecord r;
      std::memcpy(&r, buf.data() + i * sizeof r, sizeof r);
      ok[i] = r.valid();
      if (ok[i]) {
        last_good = i;
        any_good = true;
      }
    }
    const bool last_seg = si + 1 == segs.size();
    const size_t keep = any_good ? last_good + 1 : 0;
    for (size_t i = 0; i < whole; ++i) {
      if (!ok[i]) {
        if (last_seg && i >= keep) break;
        rep.bad_records++;
        rep.messages.push_back(path + ": damaged record at offset " +
                               std::to_string(i * sizeof(LeaseRecord)) +
                               " skipped; the records around it are kept");
        continue;
      }
      LeaseRecord r;
      std::memcpy(&r, buf.data() + i * sizeof r, sizeof r);
      rep.records++;
      seq_ = std::max(seq_, r.seq);
      apply_record(state_, r);
    }
    const size_t good_bytes = (last_seg ? keep : whole) * sizeof(LeaseRecord);
    if (buf.size() > good_bytes && (last_seg || buf.size() % sizeof(LeaseRecord))) {
      const size_t cut = buf.size() - good_bytes;
      rep.torn_bytes += cut;
      rep.messages.push_back(path + ": torn tail of " + std::to_string(cut) + " bytes at offset " +
                             std::to_string(good_bytes) +
                             " cut off (a write interrupted by a crash; it was never "
                             "acknowledged)");
      if (::truncate(path.c_str(), static_cast<off_t>(good_bytes)) < 0)
        rep.messages.push_back(errstr(path + ": truncate"));
    }
  }
  for (const auto& [a, r] : state_)
    if (r.type != RecType::kRelease) rep.live++;
  return open_segment(next);
}

bool Journal::append(std::span<LeaseRecord> recs) {
  if (recs.empty()) return true;
  for (LeaseRecord& r : recs) {
    r.seq = ++seq_;
    r.seal();
  }
  if (!write_all(fd_, recs.data(), recs.size_bytes())) {
    error_ = errstr(dir_ + "/" + seg_name(segment_) + ": write");
    return false;
  }
  if (sync_) {
    if (::fdatasync(fd_) < 0) {
      error_ = errstr(dir_ + "/" + seg_name(segment_) + ": fdatasync");
      return false;
    }
    syncs_++;
  }
  appended_ += recs.size();
  since_compaction_ += recs.size();
  std::lock_guard<std::mutex> g(mu_);
  for (const LeaseRecord& r : recs) apply_record(state_, r);
  return true;
}

void Journal::maybe_compact(uint64_t every) {
  if (since_compaction_ < every || compacting_.load()) return;
  if (compactor_.joinable()) compactor_.join();
  // New appends go to a fresh segment; the snapshot covers everything before it.
  const uint32_t covered = segment_ + 1;
  if (!open_segment(covered).empty()) return;
  since_compaction_ = 0;
  std::vector<LeaseRecord> image = state();
  compacting_ = true;
  compactor_ = std::thread([this, covered, image = std::move(image)]() mutable {
    LeaseRecord h{};
    h.type = RecType::kSnapshot;
    h.seq = covered;
    h.seal();
    const std::string tmp = dir_ + "/leases.snap.tmp";
    int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
    bool ok = fd >= 0 && write_all(fd, &h, sizeof h) &&
              write_all(fd, image.data(), image.size() * sizeof(LeaseRecord)) && ::fsync(fd) == 0;
    if (fd >= 0) ::close(fd);
    ok = ok && ::rename(tmp.c_str(), (dir_ + "/leases.snap").c_str()) == 0;
    if (ok) {
      fsync_dir(dir_);
      for (uint32_t s = oldest_; s < covered; ++s) ::unlink((dir_ + "/" + seg_name(s)).c_str());
      oldest_ = covered;
      compactions_++;
    }
    compacting_ = false;
  });
}

void Journal::wait_compaction() {
  if (compactor_.joinable()) compactor_.join();
}

}  // namespace nf::dhcp
