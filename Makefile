# Herd: `make` builds bin/, `make test` runs every test, `make start`
# starts the default herd.  Each first installs missing Debian packages.

BUILD ?= release
ifeq ($(BUILD),asan)
  OUT := build/asan
  BIN := build/asan/bin
  MODE_CFLAGS := -O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer \
                 -fno-sanitize-recover=undefined
  MODE_LDFLAGS := -fsanitize=address,undefined
else
  OUT := build/release
  BIN := bin
  MODE_CFLAGS := -O2 -g
  MODE_LDFLAGS :=
endif

# cc unless CC is given (make CC=clang, or CC in the environment).  Not
# `CC ?= cc`: make's built-in CC counts as set, so ?= would never apply.
ifneq ($(filter default undefined,$(origin CC)),)
  CC := cc
endif
PKG_CFLAGS := $(shell pkg-config --cflags libcurl libcjson inih libcrypto libmicrohttpd 2>/dev/null)
CFLAGS := -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -I. $(PKG_CFLAGS) \
          $(MODE_CFLAGS) -MMD -MP $(EXTRA_CFLAGS)
LDFLAGS := $(MODE_LDFLAGS) $(EXTRA_LDFLAGS)

LIBS_COMMON := -linih -lcrypto -lz
LIBS_NODE := -lev -lcares -lcurl -lcjson -lssl $(LIBS_COMMON)
LIBS_SUPERVISOR := -lev -lcjson -lmicrohttpd $(LIBS_COMMON)
LIBS_HERDCTL := -lcjson $(LIBS_COMMON)
LIBS_PLACES := -lmicrohttpd -lcjson -lm $(LIBS_COMMON)
LIBS_BENCH := -lev -lm -lcjson $(LIBS_COMMON)

objs = $(patsubst %.c,$(OUT)/%.o,$(wildcard $(1)/*.c))

COMMON_OBJS := $(call objs,common)
NODE_OBJS := $(call objs,node)
# The live page (supervisor/page.html) goes into the binary as data: an
# assembler .incbin, so the page is one file to edit and nothing to fetch.
SUPERVISOR_OBJS := $(call objs,supervisor) $(OUT)/supervisor/page_blob.o
# lib/: general helpers with nothing of the herd in them (this machine's
# addresses, Unix sockets, /proc); every program links it, beside common/.
LIB_OBJS := $(call objs,lib)
HERDCTL_OBJS := $(call objs,tools/herdctl)
PLACES_OBJS := $(call objs,tools/places)
BENCH_OBJS := $(call objs,tools/bench)
# Node modules with no event-loop dependency, which the unit tests link
# beside common/ (tests/unit/test_NAME.c tests node/NAME.c).
NODE_PURE := store journal_load journal_read
NODE_PURE_OBJS := $(patsubst %,$(OUT)/node/%.o,$(NODE_PURE))

PROGRAMS := $(if $(NODE_OBJS),$(BIN)/herd-node) \
            $(if $(SUPERVISOR_OBJS),$(BIN)/herd-supervisor) \
            $(if $(HERDCTL_OBJS),$(BIN)/herdctl) \
            $(if $(PLACES_OBJS),$(BIN)/herd-places) \
            $(if $(BENCH_OBJS),$(BIN)/herd-bench)

UNIT_SRCS := $(wildcard tests/unit/test_*.c)
UNIT_BINS := $(patsubst tests/unit/%.c,$(OUT)/tests/%,$(UNIT_SRCS))

PYTEST := /usr/bin/python3 -m pytest

PLACES_DATA := data/places.tsv

.PHONY: all build programs deps deps-test deps-bench test unit blackbox start stop bench fuzz chaos clean places-data

all: deps
	@$(MAKE) --no-print-directory build

build: programs $(PLACES_DATA)

programs: $(PROGRAMS)

# What running needs (make, make start); the tests and benchmarks add
# their own packages (scripts/deps.sh says which).
deps:
	@sh scripts/deps.sh run

deps-test:
	@sh scripts/deps.sh test

deps-bench:
	@sh scripts/deps.sh bench

$(OUT)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

$(OUT)/supervisor/page_blob.o: supervisor/page_blob.S supervisor/page.html
	@mkdir -p $(dir $@)
	$(CC) -I. -c $< -o $@

$(BIN)/herd-node: $(NODE_OBJS) $(COMMON_OBJS) $(LIB_OBJS)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LIBS_NODE)

$(BIN)/herd-supervisor: $(SUPERVISOR_OBJS) $(COMMON_OBJS) $(LIB_OBJS)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LIBS_SUPERVISOR)

$(BIN)/herdctl: $(HERDCTL_OBJS) $(COMMON_OBJS) $(LIB_OBJS)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LIBS_HERDCTL)

$(BIN)/herd-places: $(PLACES_OBJS) $(COMMON_OBJS) $(LIB_OBJS)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LIBS_PLACES)

$(BIN)/herd-bench: $(BENCH_OBJS) $(COMMON_OBJS) $(LIB_OBJS)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LIBS_BENCH)

$(OUT)/tests/test_%: tests/unit/test_%.c $(COMMON_OBJS) $(LIB_OBJS) $(NODE_PURE_OBJS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $(filter %.c %.o,$^) -lcmocka -lcjson -lcurl $(LIBS_COMMON)

unit-bins: $(UNIT_BINS)

# The places data set for herd-places: fetched by scripts/places-data.sh
# (pinned and checked) when the file is missing, so once it exists a
# plain `make` never reaches the network.  `make places-data` checks it
# against the pin again (and fetches when it differs).  The tests never
# need it (they use the committed tests/data/places-subset.tsv), so
# `make test` neither fetches it nor waits on npm.
$(PLACES_DATA):
	@sh scripts/places-data.sh

places-data:
	@sh scripts/places-data.sh

test: deps-test
	@$(MAKE) --no-print-directory programs
	@$(MAKE) --no-print-directory BUILD=asan programs unit-bins
	@$(MAKE) --no-print-directory BUILD=asan unit
	@$(MAKE) --no-print-directory blackbox

unit: $(UNIT_BINS)
	@set -e; for t in $(UNIT_BINS); do echo "== $$t"; $$t; done

# Black-box tests run the sanitizer build of every binary.
blackbox:
	HERD_BIN=$(CURDIR)/build/asan/bin $(PYTEST) -q tests/blackbox $(PYTEST_ARGS)

# libFuzzer targets (clang, ASan + UBSan) in build/fuzz/.  Each runs for
# FUZZ_SECONDS on its committed seeds (tests/fuzz/corpus/NAME, never
# written to) plus a scratch corpus; any crash, leak or timeout fails.
FUZZ_SECONDS ?= 60
FUZZ_CC ?= clang
FUZZ_SAN := -fsanitize=address,undefined -fno-sanitize-recover=undefined
FUZZ_CFLAGS := -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -I. $(PKG_CFLAGS) \
               -O1 -g -fno-omit-frame-pointer $(FUZZ_SAN) -MMD -MP
FUZZ_COMMON := $(patsubst %.c,build/fuzz/%.o,$(wildcard common/*.c))
FUZZ_BINS := $(patsubst tests/fuzz/%.c,build/fuzz/%,$(wildcard tests/fuzz/fuzz_*.c))

build/fuzz/common/%.o: common/%.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -c $< -o $@

# An archive, so a target links only the modules it calls.
build/fuzz/libcommon.a: $(FUZZ_COMMON)
	rm -f $@ && ar rcs $@ $^

$(FUZZ_BINS): build/fuzz/%: tests/fuzz/%.c build/fuzz/libcommon.a
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer -o $@ $(filter %.c %.a,$^) -lcjson $(LIBS_COMMON)

fuzz: deps-test
	@$(MAKE) --no-print-directory $(FUZZ_BINS)
	@set -e; for t in $(FUZZ_BINS); do n=$${t#build/fuzz/}; \
	  echo "== $$n for $(FUZZ_SECONDS)s"; mkdir -p build/fuzz/corpus/$$n; \
	  d=; [ -f tests/fuzz/$$n.dict ] && d=-dict=tests/fuzz/$$n.dict; \
	  $$t -max_total_time=$(FUZZ_SECONDS) -timeout=10 -print_final_stats=1 \
	    $$d -artifact_prefix=build/fuzz/$$n- build/fuzz/corpus/$$n \
	    tests/fuzz/corpus/$$n 2>build/fuzz/$$n.log \
	    || { tail -n 60 build/fuzz/$$n.log; echo "fuzz: $$n failed;" \
	         "the input is build/fuzz/$$n-*"; exit 1; }; \
	  grep -E '^(Done|stat::number_of_executed_units)' build/fuzz/$$n.log; done

# The chaos suite's long form (the short one runs in make test): a
# supervised herd of the release build under load, nodes killed, stopped
# and cut apart; nothing acknowledged may be lost.  CHAOS_ARGS adds options
# (tests/chaos/chaos.py --help).
chaos: build
	/usr/bin/python3 tests/chaos/chaos.py $(CHAOS_ARGS)

# Prints the status whatever start said, and fails when either does (a
# node down, or the places emulator down so that WHATSAT cannot work).
start: all
	@bin/herdctl -c herd.ini start; rc=$$?; bin/herdctl -c herd.ini status; \
	  st=$$?; [ $$rc -ne 0 ] && exit $$rc; exit $$st

stop:
	bin/herdctl -c herd.ini stop

# Measurements, never assertions: starts its own servers on free loopback
# ports and rewrites its own section of BENCHMARKS.md.
bench: deps-bench
	@$(MAKE) --no-print-directory $(PROGRAMS)
	/usr/bin/python3 tools/bench/run_bench.py

clean:
	rm -rf build bin

# What each object and test binary was built from (-MMD -MP).
ALL_OBJS := $(sort $(COMMON_OBJS) $(LIB_OBJS) $(NODE_OBJS) $(SUPERVISOR_OBJS) \
              $(HERDCTL_OBJS) $(PLACES_OBJS) $(BENCH_OBJS))
-include $(ALL_OBJS:.o=.d) $(UNIT_BINS:=.d) $(FUZZ_COMMON:.o=.d) $(FUZZ_BINS:=.d)
