# Build targets for `sam build` (template.yaml: `Metadata: BuildMethod: makefile`).
#
# SAM runs `make build-<LogicalId>` with ARTIFACTS_DIR set; the root Makefile pulls these
# targets in with `include infra/lambda.mk`.
#
# * build-DependenciesLayer: the third-party dependencies, ONCE, into one Lambda layer
#   (`python/` is on the functions' sys.path). Binary wheels for the functions' platform
#   (python3.13, arm64) whatever machine builds them. Both platform tags are needed:
#   some arm64 wheels for 3.13 carry only `manylinux_2_28` (google-re2, which cel-python
#   needs), others only `manylinux2014`; Lambda's Amazon Linux 2023 runs either.
# * build-<Function>: wayline itself (pure Python, from this checkout, no dependencies)
#   and the handlers: a few hundred KB per function.
#
# Tip: `sam build --build-in-source` skips SAM's copy of the whole repository (.venv too).
# `make sam-build` runs exactly that and prints the sizes (docs/deploy.md records them).

LAMBDA_PYTHON    ?= 3.13
LAMBDA_PLATFORMS ?= manylinux2014_aarch64 manylinux_2_28_aarch64
LAMBDA_PIP       ?= python3 -m pip --quiet --disable-pip-version-check
SAM              ?= sam

.PHONY: build-DependenciesLayer build-IngestFunction build-DispatchFunction \
	build-TimersFunction build-ApiFunction sam-build

build-DependenciesLayer:
	$(LAMBDA_PIP) install --target "$(ARTIFACTS_DIR)/python" --upgrade \
		$(foreach p,$(LAMBDA_PLATFORMS),--platform $(p)) \
		--implementation cp --python-version $(LAMBDA_PYTHON) \
		--only-binary=:all: -r infra/lambda-requirements.txt

build-IngestFunction build-DispatchFunction build-TimersFunction build-ApiFunction:
	$(LAMBDA_PIP) install --target "$(ARTIFACTS_DIR)" --no-deps .
	cp -R handlers "$(ARTIFACTS_DIR)/handlers"
	rm -rf "$(ARTIFACTS_DIR)"/handlers/__pycache__ "$(ARTIFACTS_DIR)"/bin

# What CI runs (.ci/sam-build): the documented build, then `sam validate --lint`, then the
# sizes of what would be uploaded (a layer may be at most 250 MB unzipped with the function).
sam-build:
	$(SAM) build --build-in-source
	$(SAM) validate --lint
	@du -sh .aws-sam/build/DependenciesLayer .aws-sam/build/*Function
