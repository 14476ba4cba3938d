#!/usr/bin/env bash
# The system libraries Qt needs to open the app's window on Linux, and what to do when some are
# missing. PySide6 carries Qt itself but links a few dozen libraries of the system (X11/xcb, GL,
# fontconfig, GLib, D-Bus); a fresh Debian often lacks libxcb-icccm4 and libxcb-keysyms1, and
# then Qt aborts with a message that names yet another package. So `make run` (and whoever
# unpacks the bundle) runs this first:
#
#   scripts/system-deps.sh [DIR]          check; when something is missing: as root with apt,
#                                         install it; otherwise print the one
#                                         `sudo apt-get install -y ...` line and exit 1
#   scripts/system-deps.sh --check [DIR]  check only: say what is missing and exit 1
#   scripts/system-deps.sh --packages     print every Debian package of the list on one line
#                                         (.ci/run installs them all)
#   scripts/system-deps.sh --libraries    print the list itself: library, package (for the tests)
#
# DIR is the virtual environment (default: .venv in the source tree) or the bundle folder
# (default when this script lies in one, as dist/fmen-upscaler/system-deps.sh does).
#
# The check runs ldd on Qt's own libraries and on the xcb platform plugin, so it asks the
# dynamic loader itself (no package database needed, right on any distribution) and takes a few
# milliseconds; it prints nothing when everything is there. The xcb plugin is skipped when
# QT_QPA_PLATFORM names another platform only (offscreen, wayland). Not Linux: nothing to do.
set -euo pipefail

# The one list: each library Qt links directly (soname) and the Debian/Ubuntu package with it.
# Found with `readelf -d` on PySide6 6.x's libQt6{Core,Gui,Widgets,Svg,DBus,XcbQpa}, the xcb
# platform plugin and its GLX integration, and `dpkg -S` on Debian 12.
LIBRARIES="
libGL.so.1              libgl1
libEGL.so.1             libegl1
libX11.so.6             libx11-6
libX11-xcb.so.1         libx11-xcb1
libxcb.so.1             libxcb1
libxcb-cursor.so.0      libxcb-cursor0
libxcb-glx.so.0         libxcb-glx0
libxcb-icccm.so.4       libxcb-icccm4
libxcb-image.so.0       libxcb-image0
libxcb-keysyms.so.1     libxcb-keysyms1
libxcb-randr.so.0       libxcb-randr0
libxcb-render.so.0      libxcb-render0
libxcb-render-util.so.0 libxcb-render-util0
libxcb-shape.so.0       libxcb-shape0
libxcb-shm.so.0         libxcb-shm0
libxcb-sync.so.1        libxcb-sync1
libxcb-util.so.1        libxcb-util1
libxcb-xfixes.so.0      libxcb-xfixes0
libxcb-xkb.so.1         libxcb-xkb1
libxkbcommon.so.0       libxkbcommon0
libxkbcommon-x11.so.0   libxkbcommon-x11-0
libfontconfig.so.1      libfontconfig1
libfreetype.so.6        libfreetype6
libglib-2.0.so.0        libglib2.0-0
libgthread-2.0.so.0     libglib2.0-0
libdbus-1.so.3          libdbus-1-3
libz.so.1               zlib1g
libzstd.so.1            libzstd1
"

me=$(basename "$0")
say() { printf '%s: %s\n' "$me" "$*" >&2; }

package_of() {
  awk -v lib="$1" '$1 == lib { print $2; exit }' <<<"$LIBRARIES"
}

mode=auto
case "${1:-}" in
  --packages)
    awk 'NF && !seen[$2]++ { printf "%s%s", sep, $2; sep = " " } END { print "" }' <<<"$LIBRARIES"
    exit 0
    ;;
  --libraries)
    awk 'NF { print $1, $2 }' <<<"$LIBRARIES"
    exit 0
    ;;
  --check) mode=check; shift ;;
  -h | --help) sed -n '2,/^set -e/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
  -*) say "unknown option $1 (try --help)"; exit 2 ;;
esac

here=$(cd "$(dirname "$0")" && pwd)
if [ $# -gt 0 ]; then
  dir=$1
elif [ -d "$here/_internal" ]; then
  dir=$here  # inside the bundle
else
  dir=$(dirname "$here")/.venv
fi

[ "$(uname -s)" = Linux ] || exit 0  # Qt on macOS and Windows brings what it needs
if ! command -v ldd >/dev/null; then
  say "cannot check Qt's system libraries: ldd is not installed; going on"
  exit 0
fi

qt=
for candidate in "$dir"/_internal/PySide6/Qt "$dir"/lib/python3*/site-packages/PySide6/Qt "$dir"/PySide6/Qt; do
  if [ -d "$candidate/lib" ]; then qt=$candidate; break; fi
done
if [ -z "$qt" ]; then
  say "no PySide6 (Qt) under $dir: give the virtual environment or the bundle folder"
  exit 2
fi

files=("$qt"/lib/libQt6Widgets.so.6 "$qt"/lib/libQt6Svg.so.6)
case "${QT_QPA_PLATFORM:-xcb}" in
  *xcb*) files+=("$qt"/plugins/platforms/libqxcb.so "$qt"/plugins/xcbglintegrations/libqxcb-glx-integration.so) ;;
esac
existing=()
for f in "${files[@]}"; do [ -e "$f" ] && existing+=("$f"); done
[ ${#existing[@]} -gt 0 ] || exit 0

missing_libraries() {
  # A bundle's own copies of libraries lie in _internal/, found there at run time through the
  # LD_LIBRARY_PATH its launcher sets; ldd must look there too.
  local path=${LD_LIBRARY_PATH:-}
  [ -d "$dir/_internal" ] && path=$dir/_internal${path:+:$path}
  LD_LIBRARY_PATH=$path ldd "${existing[@]}" 2>/dev/null | awk '$2 == "=>" && $3 == "not" { print $1 }' | sort -u
}

mapfile -t missing < <(missing_libraries)
[ ${#missing[@]} -gt 0 ] || exit 0

packages=()
unknown=()
words=()
for lib in "${missing[@]}"; do
  pkg=$(package_of "$lib")
  if [ -n "$pkg" ]; then
    [[ " ${packages[*]} " == *" $pkg "* ]] || packages+=("$pkg")
    words+=("$lib (package $pkg)")
  else
    unknown+=("$lib")
    words+=("$lib (no package known here; 'apt-file search $lib' finds it)")
  fi
done

joined=$(printf '%s, ' "${words[@]}")
say "Qt cannot open a window without these system libraries: ${joined%, }"
has_apt=false
command -v apt-get >/dev/null && has_apt=true

if [ "$mode" = auto ] && $has_apt && [ ${#packages[@]} -gt 0 ] && [ "$(id -u)" = 0 ]; then
  say "installing ${packages[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null
  mapfile -t missing < <(missing_libraries)
  if [ ${#missing[@]} -gt 0 ]; then
    say "still missing after the install: ${missing[*]}"
    exit 1
  fi
  exit 0
fi

if [ ${#packages[@]} -gt 0 ]; then
  if $has_apt; then
    say "install them, then run this again:"
    echo "sudo apt-get install -y ${packages[*]}" >&2
  else
    say "install them with your system's package manager (the names above are Debian's)"
  fi
fi
exit 1
