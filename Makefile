# One-command entry points; the venv is created on first use.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test test-slow lint bench bench-quality gpu-check clean train-campaign

$(STAMP): pyproject.toml setup.py requirements-nodeps.txt fmen_gui/engine/backends/winograd.c
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	# A CPU build of torch 2.13.0 first, so the range in pyproject.toml pulls nothing bigger.
	$(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -e '.[test]'
	# spandrel without the torchvision its metadata asks for (why: requirements-nodeps.txt).
	$(BIN)/python -m pip install -q --no-deps -r requirements-nodeps.txt
	touch $(STAMP)

# Qt needs some system libraries to open a window (libxcb-*, GL, fontconfig, ...): the script
# says nothing when they are there; when not, it installs them as root with apt, and otherwise
# prints the one `sudo apt-get install -y ...` line and stops.
run: $(STAMP)
	@bash scripts/system-deps.sh $(VENV)
	$(BIN)/python -m fmen_gui

test: $(STAMP)
	$(BIN)/ruff check fmen_gui tests
	$(BIN)/lint-imports
	QT_QPA_PLATFORM=offscreen $(BIN)/python -m pytest -q

# The slow tests: a 4000×3000 ×4 job in the window (minutes) and the bundle (builds it).
test-slow: $(STAMP)
	test -x $(BIN)/pyinstaller || $(BIN)/python -m pip install -q 'pyinstaller>=6,<7'
	FMEN_RUN_SLOW=1 QT_QPA_PLATFORM=offscreen $(BIN)/python -m pytest -m slow -v

# The training campaign in the background until HOURS have passed (see fmen_gui/training/campaign.py).
HOURS ?= 2.5
train-campaign: $(STAMP)
	scripts/campaign.sh $(HOURS)

lint: $(STAMP)
	$(BIN)/ruff check fmen_gui tests
	$(BIN)/ruff format --check fmen_gui tests
	$(BIN)/lint-imports

clean:
	rm -rf $(VENV) build dist *.egg-info

bench: $(STAMP)
	$(BIN)/python benchmarks/bench.py

# Clean vs photo networks on JPEG/noisy versions of Set5/Set14 (the README's photo table).
bench-quality: $(STAMP)
	$(BIN)/python benchmarks/quality.py --json benchmarks/quality.json

# The CUDA path's proof on a machine with an NVIDIA GPU (correctness, memory, speed, OOM, GUI).
gpu-check: $(STAMP)
	$(BIN)/python benchmarks/gpu_check.py --json benchmarks/gpu_check.json

# ---------------------------------------------------------------- launcher: bundle, desktop entry
# `make bundle` builds the one-folder PyInstaller app into dist/fmen-upscaler/ (about a minute);
# `make test-bundle` runs the slow test that builds it (unless dist/ is newer than every input,
# see tests/test_bundle.py) and checks it with --self-test and an offscreen start.
# `make install-desktop` installs the desktop entry and icons for the current user; it starts
# .venv/bin/fmen-gui, or what DESKTOP_EXEC names, e.g.
#   make install-desktop DESKTOP_EXEC="$PWD/dist/fmen-upscaler/fmen-upscaler"
.PHONY: bundle test-bundle install-desktop uninstall-desktop

DATA_HOME = $(or $(XDG_DATA_HOME),$(HOME)/.local/share)
DESKTOP_EXEC ?= $(CURDIR)/$(BIN)/fmen-gui
ICON_SIZES := 16 24 32 48 64 128 256 512

bundle: $(STAMP)
	test -x $(BIN)/pyinstaller || $(BIN)/python -m pip install -q 'pyinstaller>=6,<7'
	nice -n 19 $(BIN)/pyinstaller --noconfirm --clean build.spec

test-bundle: $(STAMP)
	test -x $(BIN)/pyinstaller || $(BIN)/python -m pip install -q 'pyinstaller>=6,<7'
	FMEN_RUN_SLOW=1 QT_QPA_PLATFORM=offscreen $(BIN)/python -m pytest -m slow -v -s tests/test_bundle.py

install-desktop:
	@exe='$(DESKTOP_EXEC)'; \
	case "$$exe" in /*) ;; *) echo "install-desktop: DESKTOP_EXEC must be an absolute path: $$exe" >&2; exit 1;; esac; \
	case "$$exe" in *[\"\`\$$\\%]*) echo "install-desktop: cannot put this path in a desktop entry: $$exe" >&2; exit 1;; esac; \
	{ test -f "$$exe" && test -x "$$exe"; } || { echo "install-desktop: $$exe is not there yet: run 'make run' (or 'make bundle' and pass DESKTOP_EXEC)" >&2; exit 1; }; \
	apps='$(DATA_HOME)/applications'; icons='$(DATA_HOME)/icons/hicolor'; \
	mkdir -p "$$apps" "$$icons/scalable/apps" && \
	for n in $(ICON_SIZES); do \
	  mkdir -p "$$icons/$${n}x$${n}/apps" && \
	  cp resources/icons/fmen-upscaler-$$n.png "$$icons/$${n}x$${n}/apps/fmen-upscaler.png" || exit 1; \
	done && \
	cp resources/fmen-upscaler.svg "$$icons/scalable/apps/fmen-upscaler.svg" && \
	awk -v exe="$$exe" '/^Exec=/ { print "Exec=\"" exe "\" %F"; print "TryExec=" exe; next } { print }' \
	  resources/fmen-upscaler.desktop > "$$apps/.fmen-upscaler.desktop.tmp" && \
	chmod 644 "$$apps/.fmen-upscaler.desktop.tmp" && \
	mv "$$apps/.fmen-upscaler.desktop.tmp" "$$apps/fmen-upscaler.desktop" && \
	{ ! command -v update-desktop-database >/dev/null || update-desktop-database -q "$$apps" || true; } && \
	touch "$$icons" && \
	{ ! test -f "$$icons/icon-theme.cache" || gtk-update-icon-cache -q -f -t "$$icons" || true; } && \
	echo "installed $$apps/fmen-upscaler.desktop (runs $$exe) and icons under $$icons"

uninstall-desktop:
	@apps='$(DATA_HOME)/applications'; icons='$(DATA_HOME)/icons/hicolor'; \
	rm -f "$$apps/fmen-upscaler.desktop" "$$icons/scalable/apps/fmen-upscaler.svg"; \
	for n in $(ICON_SIZES); do rm -f "$$icons/$${n}x$${n}/apps/fmen-upscaler.png"; done; \
	if test -d "$$apps" && command -v update-desktop-database >/dev/null; then update-desktop-database -q "$$apps" || true; fi; \
	if test -f "$$icons/icon-theme.cache"; then gtk-update-icon-cache -q -f -t "$$icons" || true; fi; \
	echo "removed the FMEN Upscaler desktop entry and icons from $(DATA_HOME)"
