#!/bin/sh
# Run once in the Dockerfile's deps stage on the finished virtual environment: removes what no
# process of this project imports or serves, so the runtime image stays small (measured in
# docs/deploy.md). Every removal is of files nothing loads at run time; docker/warm.py (run later
# in the build) imports every module the image uses, so a library this breaks fails the build.
set -eu
VENV="${1:-/opt/venv}"
# pip and setuptools: nothing installs packages at run time (the project is copied in whole).
"$VENV/bin/python" -m pip uninstall --yes --quiet pip setuptools
for site in "$VENV"/lib/python3*/site-packages; do
  # Test suites shipped inside the wheels.
  find "$site/pandas" "$site/numpy" "$site/scipy" "$site/sklearn" "$site/pyarrow" \
    "$site/matplotlib" "$site/numba" "$site/llvmlite" -depth -type d -name tests -exec rm -rf {} +
  # pyarrow's Flight RPC (never imported here) and the headers and sources for building against
  # it; the asyncio copy of the Kubernetes client (dagster-k8s uses the synchronous one).
  rm -rf "$site/pyarrow/include" "$site/pyarrow/src" "$site/pyarrow/"*flight* \
    "$site/kubernetes/aio"
  # Source maps of the bundled web UIs (Dagster's, MLflow's): read only by browser dev tools.
  find "$site" -name '*.js.map' -type f -delete
  # C and Cython sources shipped beside the compiled extensions.
  find "$site" -type f \( -name '*.c' -o -name '*.pyx' -o -name '*.pxd' -o -name '*.pxi' \) -delete
  # Three identical copies of one library in pyarrow's wheel (wheels cannot hold symlinks).
  for copy in "$site"/pyarrow/libarrow_python.so "$site"/pyarrow/libarrow_python.so.[0-9]*[0-9]; do
    real="$(ls "$site"/pyarrow/libarrow_python.so.*.*.* 2>/dev/null | head -n 1)"
    if [ -n "$real" ] && [ "$copy" != "$real" ] && cmp -s "$copy" "$real"; then
      ln -sf "$(basename "$real")" "$copy"
    fi
  done
  # Symbol tables of shared libraries that carry no RPATH/RUNPATH: those were never rewritten
  # by auditwheel's patchelf (strip breaks the ones it rewrote, e.g. numpy's OpenBLAS).
  find "$site" -name '*.so*' -type f ! -path '*.libs/*' | while read -r lib; do
    if ! readelf -d "$lib" 2>/dev/null | grep -qE 'R(UN)?PATH'; then
      strip --strip-unneeded "$lib" 2>/dev/null || true
    fi
  done
done
find "$VENV" -name __pycache__ -type d -prune -exec rm -rf {} +
