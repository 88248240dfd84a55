# Partner token verification: build, test, lint and run locally.
# The two commands a fresh machine needs: `make run` and `make test`.

SHELL := /bin/bash
GO ?= go
BIN := $(CURDIR)/bin
STATICCHECK_VERSION := v0.8.2
STATICCHECK := $(BIN)/staticcheck
# The Lambda Runtime Interface Emulator, pinned: make invoke and make run
# run the real bootstrap binaries under it (no Docker, no SAM CLI needed).
RIE_VERSION := v0.0.0-20261030222936-bef5c4ba774d
RIE := $(BIN)/aws-lambda-rie
# gitleaks, pinned: the real-scanner test (internal/dev/localrun) scans a generated repository with it.
GITLEAKS_VERSION := v8.30.1
GITLEAKS := $(BIN)/gitleaks
# Deployed functions are arm64; local runs build for this machine.
LAMBDA_GOARCH ?= arm64
# SAM build targets (build-<LogicalId>) -> their main package. `Function` is the one function of
# partner-stack.yaml: every partner's nested stack runs the same binary (PARTNER picks the
# partner), so sam build and the local tooling build it once.
FUNCTIONS := DispatcherFunction:dispatcher Function:partner AutoRollbackFunction:autorollback
LAMBDA_GOFLAGS := -trimpath -tags lambda.norpc -ldflags='-s -w'
TEST_TIMEOUT ?= 8m

.PHONY: all build test lint run invoke tools tools-check fmt vet staticcheck cfn-lint sam-translate install clean fuzz chaos bench smoke-live soak

all: build

## tools-check: fail early, with the install command, when a Python tool is missing
tools-check:
	@command -v moto_server >/dev/null || { echo 'moto_server not found: pip install "moto[server]" cfn-lint' >&2; exit 1; }
	@command -v cfn-lint >/dev/null || { echo 'cfn-lint not found: pip install "moto[server]" cfn-lint' >&2; exit 1; }

## build: every function's bootstrap (linux/arm64, as deployed) under build/<LogicalId>/, and the tools under bin/
build:
	@for fn in $(FUNCTIONS); do id=$${fn%%:*}; pkg=$${fn##*:}; \
	  mkdir -p build/$$id; \
	  echo "build $$id <- ./functions/$$pkg"; \
	  CGO_ENABLED=0 GOOS=linux GOARCH=arm64 $(GO) build $(LAMBDA_GOFLAGS) -o build/$$id/bootstrap ./functions/$$pkg || exit 1; \
	done
	@$(MAKE) --no-print-directory install

## install: the command-line tools (feature, partner-sandbox, ...) into bin/
install:
	@mkdir -p $(BIN)
	@for d in cmd/*/; do [ -f $$d/main.go ] || continue; GOBIN=$(BIN) $(GO) install ./$$d || exit 1; done

# SAM's Makefile builder calls build-<LogicalId> with ARTIFACTS_DIR set.
define sam_build
build-$(1):
	CGO_ENABLED=0 GOOS=linux GOARCH=$$(LAMBDA_GOARCH) $(GO) build $(LAMBDA_GOFLAGS) -o $$(ARTIFACTS_DIR)/bootstrap ./functions/$(2)
endef
$(foreach fn,$(FUNCTIONS),$(eval $(call sam_build,$(word 1,$(subst :, ,$(fn))),$(word 2,$(subst :, ,$(fn))))))

## run: the main job: the whole pipeline on moto_server with the partner doubles (ARGS=--keep leaves it running)
run: tools-check $(RIE) install
	$(BIN)/localrun $(ARGS)

## invoke: one function under the Lambda emulator, as `sam local invoke` does:
##   make invoke FUNCTION=PostmanFunction EVENT=events/postman-api-key.json [ENV_VARS=env.json] [DEBUG=1]
##   (DEBUG=1 also prints the emulator's own log, as sam local invoke --debug does)
ENV_VARS ?= $(if $(wildcard .local/env.json),.local/env.json,env.json)
invoke: $(RIE)
	@test -n "$(FUNCTION)" -a -n "$(EVENT)" || { echo "usage: make invoke FUNCTION=<LogicalId> EVENT=events/<file>.json [ENV_VARS=env.json]" >&2; exit 2; }
	$(GO) run ./cmd/invoke -function $(FUNCTION) -event $(EVENT) -env-vars $(ENV_VARS) $(if $(DEBUG),-debug)

## test: every test, including the ones on moto_server (started by the tests themselves)
test: tools-check $(RIE) $(GITLEAKS)
	$(GO) test -count=1 -timeout $(TEST_TIMEOUT) ./...

## fuzz: each fuzz target (package:Target) for FUZZTIME, one after the other;
## plain `go test` (and so CI) already runs their seed corpora in testdata/fuzz
FUZZTIME ?= 30s
FUZZ_TARGETS := shared/finding:FuzzParse shared/partner/aws:FuzzSTSAnswer shared/partner/aws:FuzzAccountID \
	shared/partner/gcp:FuzzGoogleAnswer shared/partner/postman:FuzzPostmanAnswer \
	shared/partner/heroku:FuzzHerokuAnswer \
	shared/partner/openai:FuzzOpenaiAnswer \
	shared/partner/stripe:FuzzStripeAnswer \
	shared/partner/github:FuzzGithubAnswer \
	shared/partner/anthropic:FuzzAnthropicAnswer \
	shared/partner/sendgrid:FuzzSendgridAnswer \
	shared/partner/npm:FuzzNpmAnswer \
	shared/partner/slack:FuzzSlackAnswer \
	shared/partner/gitlab:FuzzGitlabAnswer

fuzz:
	@for t in $(FUZZ_TARGETS); do pkg=$${t%%:*}; name=$${t##*:}; \
	  echo "fuzz $$name in ./$$pkg for $(FUZZTIME)"; \
	  $(GO) test -run='^$$' -fuzz="^$$name\$$" -fuzztime=$(FUZZTIME) ./$$pkg || exit 1; \
	done

## chaos: the fault-injection suite on moto with the real functions and the partner doubles;
## prints the scenario x invariant table and fails if any cell fails (`make test` runs its
## short form). ARGS=-short, ARGS='-run name,name -v', ARGS=-list
chaos: tools-check $(RIE)
	$(GO) run ./cmd/chaos $(ARGS)

## soak: the long run: 10,000 findings over every partner through the whole local stack with random
## partner faults, a function process killed every few seconds, duplicate scans and a flag flip;
## prints the seed, the invariant table, memory against the caps and, last,
## `findings=N results=N missing=0 contradictions=0 leaked=0` (`make test` runs 300).
## ARGS='-findings 300 -seed N -kill-every 4s'
soak: tools-check $(RIE)
	$(GO) run ./cmd/soak $(ARGS)

## bench: the Go benchmarks of the partner-function handler, then cmd/bench: throughput against
## cmd/partner-sandbox (100ms ± 20ms, rate limited) vs. the limit, serial speed-up, handler overhead,
## 429s, dedupe, bootstrap sizes, cold init and peak memory (docs/benchmarks.md). ARGS for cmd/bench.
bench: tools-check $(RIE)
	$(GO) test -run='^$$' -bench=. -benchmem -benchtime=200x ./shared/pipeline/
	$(GO) run ./cmd/bench $(ARGS)

## smoke-live: the operators' live check, never run by make test or CI: each partner's real
## verifier against the real endpoint with the SMOKE_<PARTNER>_LIVE/_REVOKED credentials of the
## environment, beside its double (cmd/smoke-live documents the variables). ARGS=-partner=github
smoke-live:
	$(GO) run ./cmd/smoke-live $(ARGS)

# The SAM templates: the root stack and the nested stack every partner is.
TEMPLATES := template.yaml partner-stack.yaml

## lint: gofmt, go vet, staticcheck (pinned), cfn-lint and the SAM translator on the templates
lint: fmt vet staticcheck cfn-lint sam-translate

fmt:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet ./...

$(STATICCHECK):
	@mkdir -p $(BIN)
	GOBIN=$(BIN) $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)

## tools: the pinned Go tools (staticcheck, aws-lambda-rie, gitleaks) into bin/
tools: $(STATICCHECK) $(RIE) $(GITLEAKS)

$(GITLEAKS):
	@mkdir -p $(BIN)
	GOBIN=$(BIN) $(GO) install github.com/zricethezav/gitleaks/v8@$(GITLEAKS_VERSION)

$(RIE):
	@mkdir -p $(BIN)
	GOBIN=$(BIN) $(GO) install github.com/aws/aws-lambda-runtime-interface-emulator/cmd/aws-lambda-rie@$(RIE_VERSION)

staticcheck: $(STATICCHECK)
	$(STATICCHECK) ./...

cfn-lint: tools-check
	cfn-lint $(TEMPLATES)

## sam-translate: the `sam validate` of this machine: aws-sam-translator (pip install aws-sam-translator)
## turns each template into CloudFormation and fails on what SAM would reject
sam-translate:
	@python3 -c 'import samtranslator' 2>/dev/null || { echo 'samtranslator not found: pip install aws-sam-translator' >&2; exit 1; }
	@python3 internal/dev/samtranslate/translate.py $(TEMPLATES) 2> >(grep -v 'unpublished metrics' >&2)

clean:
	rm -rf build bin .aws-sam
