# SmallMind - plain `make` builds the library (static and shared) and the
# CLI; `make test` runs the test suite; `make sanitize` runs it again under
# AddressSanitizer + UndefinedBehaviorSanitizer; `make fuzz` builds the
# libFuzzer targets (clang).

CC      ?= cc
OPT     ?= -O2
CFLAGS  ?= $(OPT) -g
WARN    := -Wall -Wextra -Wshadow -Wstrict-prototypes -Wno-unused-parameter
ifeq ($(WERROR),1)
WARN    += -Werror
endif
ALL_CFLAGS = -std=c11 -D_POSIX_C_SOURCE=200809L $(WARN) $(CFLAGS) -fPIC -Iinclude -Isrc
LDLIBS  := -lm -lpthread

BUILD   ?= build
# The library is every module under src/ except the command (src/cli) and the
# optional modules that link Debian libraries: src/json (Jansson: JSON Schema,
# message files) and src/server (libmicrohttpd + Jansson), built into the
# command when those libraries are present.
OPTIONAL_DIRS := src/cli/% src/json/% src/server/%
LIB_SRC := $(filter-out $(OPTIONAL_DIRS),$(wildcard src/*/*.c))
HAVE_JANSSON := $(shell pkg-config --exists jansson 2>/dev/null && echo 1)
HAVE_MHD     := $(shell pkg-config --exists libmicrohttpd 2>/dev/null && echo 1)
CLI_SRC := $(wildcard src/cli/*.c)
ifeq ($(HAVE_JANSSON),1)
CLI_SRC += $(wildcard src/json/*.c)
CLI_DEFS += -DSM_HAVE_JANSSON
CLI_LIBS += $(shell pkg-config --libs jansson)
ifeq ($(HAVE_MHD),1)
CLI_SRC += $(wildcard src/server/*.c)
CLI_DEFS += -DSM_HAVE_SERVER
CLI_LIBS += $(shell pkg-config --libs libmicrohttpd)
endif
endif
TEST_SRC := $(wildcard tests/unit/*.c)
LIB_OBJ := $(LIB_SRC:%.c=$(BUILD)/%.o)
CLI_OBJ := $(CLI_SRC:%.c=$(BUILD)/%.o)
TEST_OBJ := $(TEST_SRC:%.c=$(BUILD)/%.o)
DEPS    := $(LIB_OBJ:.o=.d) $(CLI_OBJ:.o=.d) $(TEST_OBJ:.o=.d)

STATIC  := $(BUILD)/libsmallmind.a
SHARED  := $(BUILD)/libsmallmind.so
CLI     := $(BUILD)/smallmind
UNIT    := $(BUILD)/unit_tests
TOOLS   := $(BUILD)/dump_logits $(BUILD)/grad_dump

# The unit tests count every allocation the library makes by wrapping the
# allocator at link time; this works under the sanitizers too.
WRAP    := -Wl,--wrap=malloc,--wrap=calloc,--wrap=realloc,--wrap=free,--wrap=posix_memalign,--wrap=aligned_alloc

.PHONY: all test sanitize fuzz clean cross-test
all: $(STATIC) $(SHARED) $(CLI) smallmind

$(BUILD)/src/cli/profile_report.o: ALL_CFLAGS += -DSM_BUILD_FLAGS='"$(strip $(CC) $(CFLAGS))"'

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -MMD -MP -c $< -o $@

$(STATIC): $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(SHARED): $(LIB_OBJ)
	$(CC) $(CFLAGS) -shared -o $@ $^ $(LDLIBS)

$(CLI_OBJ): ALL_CFLAGS += $(CLI_DEFS)

$(CLI): $(CLI_OBJ) $(STATIC)
	$(CC) $(CFLAGS) -o $@ $(CLI_OBJ) $(STATIC) $(CLI_LIBS) $(LDLIBS)

# A copy at the top of the checkout, for `./smallmind run ...`.
smallmind: $(CLI)
	cp $(CLI) smallmind

# The unit tests also check the command's profile section writer.
UNIT_CLI_OBJ := $(BUILD)/src/cli/profile_sections.o
$(UNIT): $(TEST_OBJ) $(UNIT_CLI_OBJ) $(STATIC)
	$(CC) $(CFLAGS) -o $@ $(TEST_OBJ) $(UNIT_CLI_OBJ) $(STATIC) $(LDLIBS) $(WRAP)

$(BUILD)/dump_logits: tests/tools/dump_logits.c $(STATIC)
	$(CC) $(ALL_CFLAGS) -o $@ $< $(STATIC) $(LDLIBS)

$(BUILD)/grad_dump: tests/tools/grad_dump.c $(STATIC)
	$(CC) $(ALL_CFLAGS) -o $@ $< $(STATIC) $(LDLIBS)

test: $(CLI) $(UNIT) $(TOOLS)
	@BUILD=$(BUILD) CC="$(CC)" CFLAGS="$(CFLAGS)" bash tests/run.sh

SAN_FLAGS := -O1 -g -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
sanitize:
	$(MAKE) BUILD=build-san CFLAGS="$(SAN_FLAGS)" build-san/smallmind build-san/unit_tests build-san/dump_logits build-san/grad_dump
	@BUILD=build-san CC="$(CC)" CFLAGS="$(SAN_FLAGS)" ASAN_OPTIONS=detect_leaks=1 bash tests/run.sh

FUZZ_CC    ?= clang
FUZZ_FLAGS := -O1 -g -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all -std=c11 -D_POSIX_C_SOURCE=200809L -Iinclude -Isrc
FUZZERS    := $(patsubst tests/fuzz/%.c,build-fuzz/%,$(wildcard tests/fuzz/fuzz_*.c))
fuzz: $(FUZZERS)
build-fuzz/%: tests/fuzz/%.c $(LIB_SRC)
	@mkdir -p build-fuzz
	$(FUZZ_CC) $(FUZZ_FLAGS) -o $@ $< $(LIB_SRC) -lm -lpthread

# The AArch64 (NEON) kernels, built with Debian's cross compiler and run
# under qemu-user: the kernel tests compare them with the scalar reference.
CROSS_CC  ?= aarch64-linux-gnu-gcc
QEMU      ?= qemu-aarch64
cross-test:
	$(MAKE) BUILD=build-aarch64 CC=$(CROSS_CC) CFLAGS="-O2 -g" build-aarch64/unit_tests_static
	$(QEMU) -L /usr/aarch64-linux-gnu build-aarch64/unit_tests_static simd fp16 quantize kernel_selection \
		matvec_f32_and_f16 norm_softmax regex utf8 gguf_every gguf_hostile gguf_writer profiler_synthetic \
		types_k

$(BUILD)/unit_tests_static: $(TEST_OBJ) $(UNIT_CLI_OBJ) $(STATIC)
	$(CC) $(CFLAGS) -static -o $@ $(TEST_OBJ) $(UNIT_CLI_OBJ) $(STATIC) $(LDLIBS) $(WRAP)

clean:
	rm -rf build build-san build-fuzz build-aarch64 smallmind

-include $(DEPS)
