#!/usr/bin/env bash
# Installs the Autobahn|Testsuite (`wstest`, Python 2.7 only) into a private folder:
#
#   tests/autobahn/install.sh [PREFIX]
#
# PREFIX defaults to $NETSTACK_AUTOBAHN_PREFIX, else /opt/netstack-autobahn. Afterwards
# tests/autobahn/wstest (which reads the same variable) runs the suite.
#
# The interpreter:
#   1. pyenv's 2.7.18 when it is installed ($PYENV_ROOT or ~/.pyenv), as on the CI machines;
#   2. otherwise Debian bullseye's python2.7 packages, fetched with `apt-get download` through a
#      private apt state (its own sources.list, lists and cache under PREFIX) and unpacked with
#      `dpkg -x` into PREFIX/python2.7: nothing is installed system-wide, the host's apt state is
#      never touched. pip comes from the pip 20.3.4 wheel (the last pip for Python 2.7).
#   NETSTACK_AUTOBAHN_NO_PYENV=1 forces the second way (to test it on a machine with pyenv).
#
# The packages: exactly the pins in requirements.txt, with `pip install --no-deps --target`
# into PREFIX/site. The launcher adds that folder with site.addsitedir, which also reads the
# .pth files zope.interface relies on (plain PYTHONPATH does not).
#
# Idempotent: PREFIX/.stamp records a hash of this script and the pins; when it matches and
# `wstest --help` runs, a second run returns at once. Any failing step fails the script.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
prefix="${1:-${NETSTACK_AUTOBAHN_PREFIX:-/opt/netstack-autobahn}}"
stamp_want="$(cat "$here/install.sh" "$here/requirements.txt" | sha256sum | cut -d' ' -f1)"

log() { echo "autobahn install: $*" >&2; }

check() {
    NETSTACK_AUTOBAHN_PREFIX="$prefix" "$here/wstest" --help >/dev/null 2>&1
}

if [[ -f "$prefix/.stamp" && "$(cat "$prefix/.stamp")" == "$stamp_want" ]] && check; then
    log "up to date in $prefix"
    exit 0
fi

mkdir -p "$prefix"
rm -f "$prefix/.stamp"

# --- the interpreter -------------------------------------------------------------------
pyenv_python="${PYENV_ROOT:-${HOME:-/root}/.pyenv}/versions/2.7.18/bin/python2.7"
if [[ "${NETSTACK_AUTOBAHN_NO_PYENV:-0}" != 1 && -x "$pyenv_python" ]]; then
    log "using pyenv's $pyenv_python"
    python="$pyenv_python"
    echo "$python" >"$prefix/interpreter"
    rm -f "$prefix/env"
    if ! "$python" -m pip --version >/dev/null 2>&1; then
        "$python" -m ensurepip
    fi
    pip=("$python" -m pip)
else
    log "no pyenv 2.7.18: unpacking Debian bullseye's python2.7 into $prefix/python2.7"
    apt_dir="$prefix/apt"
    root="$prefix/python2.7"
    mkdir -p "$apt_dir/lists/partial" "$apt_dir/cache/archives/partial" "$apt_dir/debs"
    echo "deb [signed-by=/usr/share/keyrings/debian-archive-bullseye-stable.gpg] http://deb.debian.org/debian bullseye main" \
        >"$apt_dir/sources.list"
    apt_opts=(
        -o "Dir::Etc::sourcelist=$apt_dir/sources.list"
        -o "Dir::Etc::sourceparts=-"
        -o "Dir::State::Lists=$apt_dir/lists"
        -o "Dir::Cache=$apt_dir/cache"
        -o "Dir::State::status=/dev/null"
        -o "APT::Get::List-Cleanup=0"
        -o "APT::Sandbox::User=root"
    )
    apt-get "${apt_opts[@]}" -q update
    # The interpreter and its standard library, plus the two shared libraries it links that
    # bookworm no longer ships (OpenSSL 1.1, libffi 7). The others (zlib, bz2, expat,
    # readline, sqlite, gdbm, db5.3, ncurses, crypt, nsl) are bookworm's own, same sonames.
    pkgs=(python2.7 python2.7-minimal libpython2.7-minimal libpython2.7-stdlib libssl1.1 libffi7)
    (cd "$apt_dir/debs" && apt-get "${apt_opts[@]}" -q download "${pkgs[@]}")
    rm -rf "$root"
    for deb in "$apt_dir"/debs/*.deb; do
        dpkg -x "$deb" "$root"
    done
    libs="$root/usr/lib/x86_64-linux-gnu:$root/lib/x86_64-linux-gnu"
    python="$root/usr/bin/python2.7"
    # Read by the wstest launcher: the unpacked tree is its Python home.
    cat >"$prefix/env" <<EOF
export PYTHONHOME="$root/usr"
export LD_LIBRARY_PATH="$libs\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}"
EOF
    echo "$python" >"$prefix/interpreter"
    # Only the Python 2 calls get that environment (it would break the host's python3).
    py2=(env PYTHONHOME="$root/usr" LD_LIBRARY_PATH="$libs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" "$python")
    "${py2[@]}" -c 'import ssl, hashlib, zlib, ctypes, json; print("python2.7 ok: " + ssl.OPENSSL_VERSION)'

    # pip 20.3.4 (the last for Python 2.7), fetched as a wheel by the host's Python 3 pip.
    boot="$prefix/pip-bootstrap"
    if [[ ! -d "$boot/pip" ]]; then
        if ! python3 -m pip --version >/dev/null 2>&1; then
            apt-get install -y -q --no-install-recommends python3-pip
        fi
        rm -rf "$prefix/wheels"
        python3 -m pip download -q --no-deps --only-binary=:all: --python-version 2.7 \
            --implementation py -d "$prefix/wheels" \
            pip==20.3.4 setuptools==44.1.1 wheel==0.37.1
        "${py2[@]}" "$prefix/wheels/pip-20.3.4-py2.py3-none-any.whl/pip" install -q \
            --no-index --find-links "$prefix/wheels" --target "$boot" \
            pip==20.3.4 setuptools==44.1.1 wheel==0.37.1
    fi
    pip=(env PYTHONPATH="$boot" "${py2[@]}" -m pip)
fi

# --- the packages ----------------------------------------------------------------------
log "installing the pins of requirements.txt into $prefix/site"
rm -rf "$prefix/site"
"${pip[@]}" install -q --disable-pip-version-check --no-cache-dir --no-deps \
    --target "$prefix/site" -r "$here/requirements.txt"

if ! check; then
    NETSTACK_AUTOBAHN_PREFIX="$prefix" "$here/wstest" --help || true
    log "FAILED: wstest --help does not run"
    exit 1
fi
echo "$stamp_want" >"$prefix/.stamp"
log "ok: $(NETSTACK_AUTOBAHN_PREFIX="$prefix" "$here/wstest" --autobahnversion 2>/dev/null | tr '\n' ' ')"
