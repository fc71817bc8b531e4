#!/bin/sh
# Brings the quickstart's data (Fashion-MNIST): the Debian package dataset-fashion-mnist where apt is available
# (as root, or through passwordless sudo), else torchvision's download when online, else one line saying the
# exact command to run. Never fails `make install`: without data the quickstart says the same line again.
PYTHON=${PYTHON:-python3}
PKG=dataset-fashion-mnist
have_data() {
  "$PYTHON" -c "from deploybench.data.fashion_mnist import find_local; import sys; sys.exit(find_local() is None)" \
    2>/dev/null
}
if have_data; then echo "data: Fashion-MNIST found"; exit 0; fi
SUDO=""
if [ "$(id -u)" != 0 ] && command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then SUDO="sudo -n"; fi
if command -v apt-get >/dev/null 2>&1 && { [ "$(id -u)" = 0 ] || [ -n "$SUDO" ]; }; then
  echo "data: installing the Debian package $PKG"
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$PKG" >/dev/null 2>&1 \
    || { $SUDO apt-get update -qq >/dev/null 2>&1; \
         $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$PKG" >/dev/null 2>&1; }
  if have_data; then echo "data: Fashion-MNIST installed from $PKG"; exit 0; fi
fi
echo "data: trying torchvision's download of Fashion-MNIST into ~/.cache/deploybench"
if "$PYTHON" -c "from deploybench.data.fashion_mnist import find_folder; find_folder(None)" >/dev/null 2>&1 \
    && have_data; then
  echo "data: Fashion-MNIST downloaded"; exit 0
fi
echo "data: Fashion-MNIST not found and could not be installed; run: sudo apt-get install $PKG" \
     "(or put the IDX files in \$DEPLOYBENCH_DATA/fashion-mnist)" >&2
exit 0
