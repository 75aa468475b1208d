# Entry points; each is a thin wrapper (the logic lives in scripts/ and the code).
.PHONY: dev test lint build package-sizes bench fuzz deploy clean

# Builds and runs the whole connector locally, with the built-in Zoom simulator.
dev:
	cargo run -p zoom-connector-local -- --port $${PORT:-3000} --data-dir $${DATA_DIR:-./.connector-data}

# The whole test suite; installs what it needs (.venv with moto + cfn-lint, Chromium).
test:
	scripts/test.sh

lint:
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings

# arm64 Lambda packages with SAM + cargo-lambda (see docs/operations.md).
build:
	scripts/build.sh

package-sizes:
	scripts/package-sizes.sh

# Benchmarks (release build, ~15 minutes); writes docs/benchmarks.md.
bench:
	scripts/bench.sh

# A longer fuzzing run than the bounded one in `make test`.
fuzz:
	scripts/fuzz.sh --long

deploy: build
	sam deploy --guided

clean:
	cargo clean
	rm -rf .aws-sam
