#!/usr/bin/env bash
# build-image.sh LAYOUT[:TAG] - the iris pipeline as an OCI image, made
# offline from this host's Debian packages (python3, python3-sklearn and
# what they depend on) with umoci. TAG defaults to 1.
#
# Three layers, each a tar of files copied from the host:
#   1. Python: /usr/bin/python3.11, the standard library (without its
#      tests, idle, tkinter, ensurepip, lib2to3), busybox-static's sh, and
#      every shared library these need (ldd), with an ld.so.cache for them;
#   2. scikit-learn and what it imports: numpy, scipy, joblib and
#      threadpoolctl from /usr/lib/python3/dist-packages (without tests),
#      plus their shared libraries (OpenBLAS, gfortran, ...);
#   3. the pipeline: examples/iris/pipeline/*.py at /opt/iris.
# The config: Entrypoint [/usr/bin/python3], WorkingDir /opt/iris, PATH,
# PYTHONDONTWRITEBYTECODE=1; tasks name the script and its arguments.
# Changing a script changes only layer 3 (and the image's digest, so the
# step cache misses); the big layers stay the same blobs.
#
# Why not debootstrap/mmdebstrap: they need a Debian mirror, and this must
# build with no network. Copying only the packages' files keeps the image
# near 150 MB unpacked (the whole host would be gigabytes), and it builds
# in well under a minute.
set -euo pipefail
src=$(cd "$(dirname "$0")/../.." && pwd)
dest=${1:?usage: build-image.sh LAYOUT[:TAG]}
layout=${dest%%:*}
tag=1
[ "$layout" = "$dest" ] || tag=${dest#*:}
for c in umoci ldd tar /bin/busybox /usr/bin/python3; do
    command -v "$c" >/dev/null || { echo "build-image.sh: $c is missing (scripts/install-deps.sh)" >&2; exit 1; }
done
py=$(readlink -f /usr/bin/python3)            # /usr/bin/python3.11
pyver=$(basename "$py")                       # python3.11
stdlib=/usr/lib/$pyver
dist=/usr/lib/python3/dist-packages
/usr/bin/python3 -c 'import sklearn, scipy, numpy, joblib, threadpoolctl' 2>/dev/null ||
    { echo "build-image.sh: python3-sklearn is not installed (scripts/install-deps.sh)" >&2; exit 1; }

work=$(mktemp -d "${TMPDIR:-/tmp}/iris-image.XXXXXX")
trap 'rm -rf "$work"' EXIT
l1=$work/l1 l2=$work/l2 l3=$work/l3
mkdir -p "$l1/usr/bin" "$l1/usr/lib" "$l1/usr/lib64" "$l1/etc" "$l1/tmp" "$l2" "$l3/opt/iris"
# Debian's merged /usr
ln -s usr/bin "$l1/bin"
ln -s usr/lib "$l1/lib"
ln -s usr/lib64 "$l1/lib64"

# copy_tree SRC DEST_ROOT [tar excludes]: SRC (a folder) at the same path under DEST_ROOT
copy_tree() {
    local from=$1 to=$2
    shift 2
    mkdir -p "$to$(dirname "$from")"
    tar -C "$(dirname "$from")" --exclude=__pycache__ "$@" -cf - "$(basename "$from")" |
        tar -C "$to$(dirname "$from")" -xf -
}

# layer 1: Python
cp "$py" "$l1/usr/bin/$pyver"
ln -s "$pyver" "$l1/usr/bin/python3"
cp /bin/busybox "$l1/usr/bin/busybox"
for c in sh ls cat env; do ln -s busybox "$l1/usr/bin/$c"; done
copy_tree "$stdlib" "$l1" --exclude="$pyver/test" --exclude="$pyver/idlelib" \
    --exclude="$pyver/tkinter" --exclude="$pyver/ensurepip" --exclude="$pyver/lib2to3" \
    --exclude="$pyver/turtledemo" --exclude="$pyver/config-*"
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/sh\n' >"$l1/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' >"$l1/etc/group"

# layer 2: scikit-learn and its imports
for p in sklearn numpy scipy joblib threadpoolctl.py; do
    if [ -d "$dist/$p" ]; then
        copy_tree "$dist/$p" "$l2" --exclude="$p/tests" --exclude="*/tests"
    else
        mkdir -p "$l2$dist"
        cp "$dist/$p" "$l2$dist/"
    fi
done
# numpy's and scipy's bundled or split-out libraries, if any
for d in "$dist"/numpy.libs "$dist"/scipy.libs; do [ ! -d "$d" ] || copy_tree "$d" "$l2"; done

# libs_of ROOT DEST: the shared libraries the ELF files under ROOT need
# and that are not in layer 1 yet, copied (dereferenced) into DEST under
# the multiarch folder where the loader finds them
libdir=$(dirname "$(ldd "$py" | sed -n 's/.*libc\.so\.6 => \([^ ]*\).*/\1/p')") # /lib/x86_64-linux-gnu
libdir=/usr/lib/${libdir##*/}
libs_of() {
    local root=$1 to=$2 f lib
    mkdir -p "$to$libdir"
    find "$root" -type f \( -name '*.so' -o -name '*.so.*' -o -path '*/bin/*' \) -print0 |
        xargs -0 -r ldd 2>/dev/null |
        sed -n 's/^[[:space:]]*\([^ ]*\) => \(\/[^ ]*\) .*/\1 \2/p' | sort -u |
        while read -r lib f; do
            [ -e "$l1$libdir/$lib" ] || [ -e "$to$libdir/$lib" ] || cp -L "$f" "$to$libdir/$lib"
        done
}
libs_of "$l1/usr/bin/$pyver" "$l1"
libs_of "$l1$stdlib" "$l1"
# the loader at the path the ELF files name
interp=$(ldd "$py" | sed -n 's/^[[:space:]]*\(\/[^ ]*ld-linux[^ ]*\) .*/\1/p' | head -n 1)
[ -n "$interp" ] || { echo "build-image.sh: cannot find the dynamic loader of $py" >&2; exit 1; }
mkdir -p "$l1/usr$(dirname "${interp#/usr}")"
cp -L "$interp" "$l1/usr${interp#/usr}"
libs_of "$l2" "$l2"
# an ld.so.cache for both layers' libraries (built on the merged tree), in
# layer 2 with them
mkdir -p "$work/merged" "$l2/etc"
cp -a "$l1/." "$l2/." "$work/merged/"
printf '%s\n' "$libdir" | tee "$l1/etc/ld.so.conf" >"$work/merged/etc/ld.so.conf"
ldconfig -r "$work/merged"
cp "$work/merged/etc/ld.so.cache" "$l2/etc/ld.so.cache"

# layer 3: the pipeline
cp "$src"/examples/iris/pipeline/*.py "$l3/opt/iris/"

for l in l1 l2 l3; do
    tar -C "$work/$l" --numeric-owner --owner=0 --group=0 --sort=name \
        --mtime=@0 -cf "$work/$l.tar" .
done
[ -d "$layout" ] || umoci init --layout "$layout"
# (fixed times: the same files give the same digest)
umoci new --image "$layout:$tag"
for l in l1 l2 l3; do
    umoci raw add-layer --history.created 1970-01-01T00:00:00Z \
        --history.created_by "examples/iris-image/build-image.sh ($l)" \
        --image "$layout:$tag" "$work/$l.tar"
done
umoci config --no-history --created 1970-01-01T00:00:00Z --image "$layout:$tag" \
    --config.env PATH=/usr/bin --config.env PYTHONDONTWRITEBYTECODE=1 \
    --config.env LANG=C.UTF-8 \
    --config.entrypoint /usr/bin/python3 --config.workingdir /opt/iris \
    --config.label org.opencontainers.image.title=cairn-iris \
    --config.label org.opencontainers.image.source=examples/iris-image
sizes=$(for l in l1 l2 l3; do printf '%s ' "$(du -sk "$work/$l.tar" | cut -f1)"; done)
echo "built $layout:$tag (layers of $(echo $sizes | sed 's/ / KB, /g') KB unpacked)"
