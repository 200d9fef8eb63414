# Shared by the shell lab tests (sourced): result counting and an nfctl that cannot hang.
PASS=0
FAIL=0
FAILED=()
NFCTL=$(command -v nfctl || echo /usr/local/bin/nfctl)
nfctl() { timeout 20 "$NFCTL" "$@"; }  # never hang a test if nf stops answering
ok()  { PASS=$((PASS + 1)); echo "  [PASS] $*"; }
bad() { FAIL=$((FAIL + 1)); FAILED+=("$*"); echo "  [FAIL] $*"; }
