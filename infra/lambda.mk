# Build targets for `sam build` (template.yaml: `Metadata: BuildMethod: makefile`).
#
# SAM runs `make build-<LogicalId>` with ARTIFACTS_DIR set; the root Makefile pulls these
# targets in with `include infra/lambda.mk`. Dependencies are installed as binary wheels
# for the functions' platform (python3.13, arm64) whatever machine builds them; wayline
# itself is pure Python and installed from this checkout, then the handlers are copied.
# Tip: `sam build --build-in-source` skips SAM's copy of the whole repository (.venv too).

LAMBDA_PYTHON   ?= 3.13
LAMBDA_PLATFORM ?= manylinux2014_aarch64
LAMBDA_PIP      ?= python3 -m pip --quiet --disable-pip-version-check

.PHONY: build-IngestFunction build-DispatchFunction build-TimersFunction build-ApiFunction

build-IngestFunction build-DispatchFunction build-TimersFunction build-ApiFunction:
	$(LAMBDA_PIP) install --target "$(ARTIFACTS_DIR)" --upgrade \
		--platform $(LAMBDA_PLATFORM) --implementation cp --python-version $(LAMBDA_PYTHON) \
		--only-binary=:all: -r infra/lambda-requirements.txt
	$(LAMBDA_PIP) install --target "$(ARTIFACTS_DIR)" --no-deps .
	cp -R handlers "$(ARTIFACTS_DIR)/handlers"
	rm -rf "$(ARTIFACTS_DIR)"/handlers/__pycache__
