#!/usr/bin/env bash
# Jupyter kernel launcher for r1lab notebooks: evcxr with libtorch on the loader path and a warm,
# exclusive build folder.
#
# evcxr compiles every cell, and all of r1lab's dependencies (tch, polars, ...) on first use,
# into EVCXR_TMPDIR. Keeping that folder between kernels makes a second start take seconds
# instead of many minutes, but two evcxr kernels must never share one. So each kernel takes the
# first free "slot" folder under target/evcxr/ and holds an flock on it for its lifetime:
# notebooks run one after another (make notebooks) all reuse slot 0; a second notebook open at
# the same time gets slot 1, and so on.
#
# Usage (written into .jupyter/kernels/r1lab/kernel.json by scripts/install_kernel.py):
#   evcxr_kernel.sh EVCXR_JUPYTER_BINARY --control_file CONNECTION_FILE
set -euo pipefail
evcxr=$1
shift
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
venv=${R1LAB_VENV:-$root/.venv}
torch_lib=${R1LAB_TORCH_LIB:?R1LAB_TORCH_LIB is not set: re-create the kernel with make kernel}

# torch-sys's build script (run by cargo inside the kernel) finds libtorch through the venv's
# python; the cell libraries evcxr builds carry no rpath, so libtorch must be on the loader path.
export LIBTORCH_USE_PYTORCH=1 VIRTUAL_ENV=$venv PATH=$venv/bin:$PATH
export LD_LIBRARY_PATH=$torch_lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
# evcxr_jupyter "updates" (rewrites) $JUPYTER_PATH/kernels/rust/kernel.json at start-up when it
# finds one of another version. Our kernelspec is named r1lab, so pointing JUPYTER_PATH at our
# own folder, which has no kernels/rust, leaves every kernelspec alone.
export JUPYTER_PATH=$root/.jupyter

base=${R1LAB_EVCXR_DIR:-$root/target/evcxr}
mkdir -p "$base"
for slot in 0 1 2 3 4 5 6 7; do
  dir=$base/slot-$slot
  exec {lock}>"$dir.lock"
  if flock -n "$lock"; then
    mkdir -p "$dir"
    # evcxr resolves dependencies in its own crate; start from the workspace's lock file so the
    # notebooks get the same versions as the tests.
    [ -f "$dir/Cargo.lock" ] || cp "$root/Cargo.lock" "$dir/Cargo.lock"
    export EVCXR_TMPDIR=$dir
    exec "$evcxr" "$@"   # the lock fd stays open in the kernel, so the slot is held until it exits
  fi
  exec {lock}>&-
done
echo "evcxr_kernel.sh: all 8 build slots under $base are in use by running kernels" >&2
exit 1
