// gtest main for tests that need EAL (rte_lpm, mempools): a minimal in-memory EAL without
// hugepages or devices, so it runs anywhere the unit tests run.
#include <gtest/gtest.h>
#include <rte_eal.h>

int main(int argc, char** argv) {
  testing::InitGoogleTest(&argc, argv);
  const char* eal[] = {
      "nf-eal-test",           "--no-huge", "-m", "256", "--no-pci", "--no-shconf", "-l", "0",
      "--log-level=*:warning", nullptr};
  if (rte_eal_init(9, const_cast<char**>(eal)) < 0) {
    fprintf(stderr, "rte_eal_init failed\n");
    return 1;
  }
  int rc = RUN_ALL_TESTS();
  rte_eal_cleanup();
  return rc;
}
