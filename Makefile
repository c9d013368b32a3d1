# `sam build` runs one target per function (template.yaml: `BuildMethod: makefile`), from the checkout
# (samconfig.toml: build_in_source), with ARTIFACTS_DIR set to where SAM takes the function's `bootstrap`
# from. Each target builds its binary with the `lambda` profile of Cargo.toml through cargo-lambda, which
# cross-compiles with zig; the four builds share one compilation of the dependencies.
#
# LAMBDA_TARGET picks the architecture: --arm64 (the template's) by default; scripts/sam-local builds
# --x86-64 for a template copy that says x86_64, to run the functions in local Docker on an x86_64 host.
LAMBDA_TARGET ?= --arm64
CARGO_LAMBDA ?= cargo lambda

build-Inbound:
	$(CARGO_LAMBDA) build --locked --profile lambda $(LAMBDA_TARGET) --bin inbound \
		--lambda-dir "$(ARTIFACTS_DIR)" --flatten inbound

build-Feedback:
	$(CARGO_LAMBDA) build --locked --profile lambda $(LAMBDA_TARGET) --bin feedback \
		--lambda-dir "$(ARTIFACTS_DIR)" --flatten feedback

build-Links:
	$(CARGO_LAMBDA) build --locked --profile lambda $(LAMBDA_TARGET) --bin links \
		--lambda-dir "$(ARTIFACTS_DIR)" --flatten links

build-Send:
	$(CARGO_LAMBDA) build --locked --profile lambda $(LAMBDA_TARGET) --bin send \
		--lambda-dir "$(ARTIFACTS_DIR)" --flatten send

.PHONY: build-Inbound build-Feedback build-Links build-Send
