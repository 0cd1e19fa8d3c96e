# SmallMind - plain `make` builds the library (static and shared) and the
# CLI; `make test` runs the test suite; `make sanitize` runs it again under
# AddressSanitizer + UndefinedBehaviorSanitizer; `make fuzz` builds the
# libFuzzer targets (clang); `make install PREFIX=... [DESTDIR=...]` installs
# the libraries, the header, smallmind.pc, the command and the built-in model.

CC      ?= cc
OPT     ?= -O2
CFLAGS  ?= $(OPT) -g
WARN    := -Wall -Wextra -Wshadow -Wstrict-prototypes -Wpointer-arith -Wno-unused-parameter
ifeq ($(WERROR),1)
WARN    += -Werror
endif
ALL_CFLAGS = -std=c11 -D_POSIX_C_SOURCE=200809L $(WARN) $(CFLAGS) -fPIC -Iinclude -Isrc
LDLIBS  := -lm -lpthread

BUILD   ?= build
# The library is every module under src/ except the command (src/cli) and the
# optional modules that link Debian libraries: src/json (Jansson: JSON Schema,
# message files) and src/server (libmicrohttpd + Jansson), built into the
# command when those libraries are present, and src/mpi (data-parallel
# training under mpirun), compiled with mpicc into the command when mpicc is
# present (then the command is linked by mpicc too).
OPTIONAL_DIRS := src/cli/% src/json/% src/server/% src/mpi/%
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
# the chat page, compiled in as a string
CLI_GEN := $(BUILD)/gen/server_page.o
endif
endif
ifneq ($(HAVE_JANSSON)$(HAVE_MHD),11)
$(info note: `smallmind serve` is left out: it needs libmicrohttpd and Jansson (apt-get install libmicrohttpd-dev libjansson-dev, then make))
endif
MPICC   ?= mpicc
HAVE_MPI := $(shell command -v $(MPICC) > /dev/null 2>&1 && echo 1)
CLI_LD  := $(CC)
ifeq ($(HAVE_MPI),1)
MPI_SRC := $(wildcard src/mpi/*.c)
CLI_SRC += $(MPI_SRC)
CLI_DEFS += -DSM_HAVE_MPI
CLI_LD  := $(MPICC)
endif
TEST_SRC := $(wildcard tests/unit/*.c)
# The unit tests read some JSON fixtures with Jansson when it is present
# (the tests that need it skip without it).
ifeq ($(HAVE_JANSSON),1)
TEST_DEFS += -DSM_HAVE_JANSSON
TEST_LIBS += $(shell pkg-config --libs jansson)
endif
LIB_OBJ := $(LIB_SRC:%.c=$(BUILD)/%.o)
CLI_OBJ := $(CLI_SRC:%.c=$(BUILD)/%.o) $(CLI_GEN)
TEST_OBJ := $(TEST_SRC:%.c=$(BUILD)/%.o)
# The unit tests of src/json (JSON Schema -> grammar) need Jansson: with it,
# they are compiled with SM_HAVE_JANSSON and linked with src/json as an
# archive (so only the objects they use are pulled in).
ifeq ($(HAVE_JANSSON),1)
JSON_OBJ := $(patsubst %.c,$(BUILD)/%.o,$(wildcard src/json/*.c))
JSON_LIB := $(BUILD)/libsmallmind_json.a
TEST_DEFS := -DSM_HAVE_JANSSON
TEST_LIBS := $(shell pkg-config --libs jansson)
endif
# The unit tests also read replies with tools as the server does (src/server/tools.c).
ifeq ($(HAVE_JANSSON)$(HAVE_MHD),11)
UNIT_SERVER_OBJ := $(patsubst %,$(BUILD)/src/server/%.o,tools request text respond)
TEST_DEFS += -DSM_HAVE_SERVER
endif
DEPS    := $(LIB_OBJ:.o=.d) $(CLI_OBJ:.o=.d) $(TEST_OBJ:.o=.d)

# The command's and the unit tests' objects are compiled with the optional
# modules' flags, which change when `make test` installs their libraries after
# a plain `make`: this file holds those flags and is rewritten only when they
# change, so the objects that depend on it are compiled again (a command
# linked with the server but compiled as if without it refuses to serve).
MODULE_FLAGS := $(BUILD)/module-flags
MODULE_FLAGS_NOW := cli: $(CLI_DEFS) test: $(TEST_DEFS)
$(shell mkdir -p $(BUILD) && [ "$$(cat $(MODULE_FLAGS) 2> /dev/null)" = "$(MODULE_FLAGS_NOW)" ] || \
        echo "$(MODULE_FLAGS_NOW)" > $(MODULE_FLAGS))

STATIC  := $(BUILD)/libsmallmind.a
SHARED  := $(BUILD)/libsmallmind.so
CLI     := $(BUILD)/smallmind
UNIT    := $(BUILD)/unit_tests
TOOLS   := $(BUILD)/dump_logits $(BUILD)/grad_dump $(BUILD)/greedy_ids $(BUILD)/smallmind_slow_gelu

# The unit tests count every allocation the library makes by wrapping the
# allocator at link time; this works under the sanitizers too.
WRAP    := -Wl,--wrap=malloc,--wrap=calloc,--wrap=realloc,--wrap=free,--wrap=posix_memalign,--wrap=aligned_alloc

# The shared library's version is the header's SM_VERSION; its soname carries
# the major number (libsmallmind.so.0).
VERSION := $(shell sed -n 's/^\#define SM_VERSION "\(.*\)"/\1/p' include/smallmind.h)
SONAME  := libsmallmind.so.$(firstword $(subst ., ,$(VERSION)))

.PHONY: all test test-suite sanitize fuzz clean cross-test emu-test install uninstall
all: $(STATIC) $(SHARED) $(CLI) smallmind

$(BUILD)/src/cli/profile_report.o: ALL_CFLAGS += -DSM_BUILD_FLAGS='"$(strip $(CC) $(CFLAGS))"'

# The AVX2 strided product's register tiles: each inner loop starts on a
# 64-byte boundary, so where it lies does not depend on the code before it
# in the file (the F16 tile's loop, 117 bytes, spans two 64-byte fetch
# windows so, and three when it began 32 bytes in: LLaMA 110M F16 prompts
# on Zen 3 ran 1.03-1.11x faster aligned, medians of 10 alternating rounds)
$(BUILD)/src/kernels/kernels_x86_gemm_avx2.o: ALL_CFLAGS += -falign-loops=64

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -MMD -MP -c $< -o $@

$(STATIC): $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(SHARED): $(LIB_OBJ)
	$(CC) $(CFLAGS) -shared -Wl,-soname,$(SONAME) -o $@ $^ $(LDLIBS)
	ln -sf libsmallmind.so $(BUILD)/$(SONAME)

$(CLI_OBJ): ALL_CFLAGS += $(CLI_DEFS)
$(CLI_OBJ) $(TEST_OBJ) $(UNIT_CLI_OBJ): $(MODULE_FLAGS)

# src/mpi is compiled by mpicc (its include paths), with the compiler mpicc wraps
$(MPI_SRC:%.c=$(BUILD)/%.o): $(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	OMPI_CC=$(CC) $(MPICC) $(ALL_CFLAGS) -MMD -MP -c $< -o $@

# src/server/page.html as a C string: backslashes, quotes and question marks
# (trigraphs) escaped, each line a literal ending in \n.
$(BUILD)/gen/server_page.c: src/server/page.html
	@mkdir -p $(dir $@)
	{ echo '/* generated by the Makefile from src/server/page.html */'; echo 'const char sm_server_page[] ='; \
	  sed -e 's/\\/\\\\/g' -e 's/"/\\"/g' -e 's/?/\\?/g' -e 's/^/    "/' -e 's/$$/\\n"/' $<; echo ';'; } > $@
$(BUILD)/gen/server_page.o: $(BUILD)/gen/server_page.c
	$(CC) $(ALL_CFLAGS) -c $< -o $@

$(CLI): $(CLI_OBJ) $(STATIC)
	OMPI_CC=$(CC) $(CLI_LD) $(CFLAGS) -o $@ $(CLI_OBJ) $(STATIC) $(CLI_LIBS) $(LDLIBS)

# A copy at the top of the checkout, for `./smallmind run ...`.
smallmind: $(CLI)
	cp $(CLI) smallmind

$(TEST_OBJ): ALL_CFLAGS += $(TEST_DEFS)

ifeq ($(HAVE_JANSSON),1)
$(JSON_LIB): $(JSON_OBJ)
	@rm -f $@
	ar rcs $@ $^
endif

# The unit tests also check the command's profile section writer and its
# robust per-run step times.
UNIT_CLI_OBJ := $(BUILD)/src/cli/profile_sections.o $(BUILD)/src/cli/profile_runs.o $(UNIT_SERVER_OBJ)
$(UNIT): $(TEST_OBJ) $(UNIT_CLI_OBJ) $(JSON_LIB) $(STATIC)
	$(CC) $(CFLAGS) -o $@ $(TEST_OBJ) $(UNIT_CLI_OBJ) $(JSON_LIB) $(STATIC) $(TEST_LIBS) $(LDLIBS) $(WRAP)

$(BUILD)/dump_logits: tests/tools/dump_logits.c $(STATIC)
	$(CC) $(ALL_CFLAGS) -o $@ $< $(STATIC) $(LDLIBS)

$(BUILD)/grad_dump: tests/tools/grad_dump.c $(STATIC)
	$(CC) $(ALL_CFLAGS) -o $@ $< $(STATIC) $(LDLIBS)

$(BUILD)/greedy_ids: tests/tools/greedy_ids.c $(STATIC)
	$(CC) $(ALL_CFLAGS) -o $@ $< $(STATIC) $(LDLIBS)

# The command again with one kernel (GELU) made 20 % slower by link-time
# wrapping (tests/tools/slow_gelu.c), for the comparison test in
# tests/profile_tools_test.sh; the library has no test hook.
SLOW_WRAP := -Wl,--wrap=sm_gelu
ifeq ($(shell $(CC) -dumpmachine | cut -d- -f1),x86_64)
SLOW_WRAP := $(SLOW_WRAP),--wrap=sm_gelu_avx2,--wrap=sm_gelu_avx512
endif
$(BUILD)/smallmind_slow_gelu: $(CLI_OBJ) tests/tools/slow_gelu.c $(STATIC)
	OMPI_CC=$(CC) $(CLI_LD) $(ALL_CFLAGS) -o $@ $(CLI_OBJ) tests/tools/slow_gelu.c $(STATIC) $(CLI_LIBS) $(LDLIBS) $(SLOW_WRAP)

# writes the vocabularies of tests/unit/eog_vocabs.h (for tests/refs/make_eog_refs.sh)
$(BUILD)/eog_vocabs: tests/tools/eog_vocabs.c tests/unit/eog_vocabs.h $(STATIC)
	$(CC) $(ALL_CFLAGS) -o $@ $< $(STATIC) $(LDLIBS)

# `make test` first installs the Debian packages the suite uses
# (scripts/install_deps.sh: as root, with apt-get; otherwise it says what is
# missing), then builds and runs in a second make, which sees the libraries
# just installed (the command's optional modules are chosen when make starts).
test:
	@bash scripts/install_deps.sh
	@$(MAKE) --no-print-directory test-suite

# Everything the suites run: the copy at the top too (cli_test.sh runs both).
test-suite: $(CLI) smallmind $(STATIC) $(SHARED) $(UNIT) $(TOOLS)
	@BUILD=$(BUILD) CC="$(CC)" CFLAGS="$(CFLAGS)" bash tests/run.sh

SAN_FLAGS := -O1 -g -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
sanitize:
	$(MAKE) BUILD=build-san CFLAGS="$(SAN_FLAGS)" build-san/smallmind build-san/libsmallmind.so build-san/unit_tests build-san/dump_logits build-san/grad_dump build-san/greedy_ids build-san/smallmind_slow_gelu
	@BUILD=build-san CC="$(CC)" CFLAGS="$(SAN_FLAGS)" ASAN_OPTIONS=detect_leaks=1 bash tests/run.sh

FUZZ_CC    ?= clang
# The library is compiled once (instrumented for coverage and the sanitizers,
# build-fuzz/obj) and each target links against those objects.
FUZZ_SAN   := -fsanitize=address,undefined -fno-sanitize-recover=all
FUZZ_CFLAGS := -O1 -g $(FUZZ_SAN) -fsanitize=fuzzer-no-link -std=c11 -D_POSIX_C_SOURCE=200809L -Iinclude -Isrc
FUZZ_LINK  := -O1 -g $(FUZZ_SAN) -fsanitize=fuzzer
FUZZERS    := $(patsubst tests/fuzz/%.c,build-fuzz/%,$(wildcard tests/fuzz/fuzz_*.c))
# The JSON Schema converter (src/json) is used by two targets.
SCHEMA_SRC := src/json/json_schema.c $(wildcard src/json/schema_*.c)
# the server's request parser, the JSON Schema converter and the profile
# report reader need Jansson
ifneq ($(HAVE_JANSSON),1)
FUZZERS    := $(filter-out build-fuzz/fuzz_server_request build-fuzz/fuzz_server_responses build-fuzz/fuzz_server_util build-fuzz/fuzz_json_schema \
                build-fuzz/fuzz_profile_json build-fuzz/fuzz_sft,$(FUZZERS))
endif
FUZZ_LIB_OBJ := $(LIB_SRC:%.c=build-fuzz/obj/%.o)
fuzz: $(FUZZERS)
build-fuzz/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -MMD -MP -c $< -o $@
# each target's own objects beyond the library, and its libraries
FUZZ_EXTRA_fuzz_profile_json   := build-fuzz/obj/src/json/profile_read.o
FUZZ_EXTRA_fuzz_sft            := build-fuzz/obj/src/json/sft.o build-fuzz/obj/src/json/messages.o
FUZZ_EXTRA_fuzz_server_request := $(patsubst %.c,build-fuzz/obj/%.o,src/server/request.c src/server/text.c $(SCHEMA_SRC))
FUZZ_EXTRA_fuzz_server_responses := $(patsubst %.c,build-fuzz/obj/%.o,src/server/responses.c src/server/request.c \
                                    src/server/text.c $(SCHEMA_SRC))
FUZZ_EXTRA_fuzz_json_schema    := $(patsubst %.c,build-fuzz/obj/%.o,$(SCHEMA_SRC))
FUZZ_EXTRA_fuzz_server_util    := $(patsubst %.c,build-fuzz/obj/%.o,src/server/util.c src/server/respond.c src/server/tools.c \
                                  src/server/logprobs.c src/server/request.c src/server/text.c $(SCHEMA_SRC))
FUZZ_LIBS_fuzz_profile_json    := -ljansson
FUZZ_LIBS_fuzz_sft             := -ljansson
FUZZ_LIBS_fuzz_server_request  := $(shell pkg-config --libs jansson 2> /dev/null)
FUZZ_LIBS_fuzz_json_schema     := $(shell pkg-config --libs jansson 2> /dev/null)
FUZZ_LIBS_fuzz_server_responses := $(shell pkg-config --libs jansson 2> /dev/null)
FUZZ_LIBS_fuzz_server_util     := $(shell pkg-config --libs jansson 2> /dev/null)
.SECONDARY: $(FUZZ_LIB_OBJ) $(FUZZERS:build-fuzz/%=build-fuzz/obj/tests/fuzz/%.o) $(FUZZ_EXTRA_fuzz_profile_json) $(FUZZ_EXTRA_fuzz_sft) \
            $(FUZZ_EXTRA_fuzz_server_request) $(FUZZ_EXTRA_fuzz_json_schema) $(FUZZ_EXTRA_fuzz_server_util) \
            $(FUZZ_EXTRA_fuzz_server_responses)
.SECONDEXPANSION:
build-fuzz/fuzz_%: build-fuzz/obj/tests/fuzz/fuzz_%.o $$(FUZZ_EXTRA_fuzz_$$*) $(FUZZ_LIB_OBJ)
	$(FUZZ_CC) $(FUZZ_LINK) -o $@ $^ $(FUZZ_LIBS_fuzz_$*) -lm -lpthread
# every fuzz object's header dependencies (the targets' own and their extras too)
-include $(wildcard build-fuzz/obj/src/*/*.d build-fuzz/obj/tests/fuzz/*.d)

# The AArch64 (NEON) kernels, built with Debian's cross compiler and run
# under qemu-user: the kernel tests compare them with the scalar reference.
# The command is built there too, without Jansson, libmicrohttpd and MPI and
# with warnings as errors: the build a machine without those libraries gets.
CROSS_CC  ?= aarch64-linux-gnu-gcc
QEMU      ?= qemu-aarch64
cross-test:
	$(MAKE) BUILD=build-aarch64 CC=$(CROSS_CC) CFLAGS="-O2 -g" HAVE_JANSSON= HAVE_MHD= HAVE_MPI= WERROR=1 \
		build-aarch64/unit_tests_static build-aarch64/smallmind
	$(QEMU) -L /usr/aarch64-linux-gnu build-aarch64/unit_tests_static simd fp16 quantize kernel_selection \
		matvec_f32_and_f16 norm_softmax regex utf8 gguf_every gguf_hostile gguf_writer profiler_synthetic \
		legacy_ types_k

# The AVX-512 kernels on a host without AVX-512: the library built with
# their intrinsics emulated (tests/emu/avx512_emu.h on SIMDe, Debian's
# libsimde-dev; src/kernels/x86_isa.h) and the CPU taken to have AVX-512,
# so the unit tests, the parity test and the architecture test run the
# avx512 level too (tests/emu_test.sh). An x86-64 host with AVX2 (FMA,
# F16C) is needed.
EMU_CFLAGS := -O2 -g -mavx2 -mfma -mf16c -Wno-psabi -DSM_EMULATE_AVX512 -Itests/emu
emu-test:
	$(MAKE) BUILD=build-emu CFLAGS="$(EMU_CFLAGS)" build-emu/unit_tests build-emu/smallmind build-emu/dump_logits \
		build-emu/greedy_ids build-emu/grad_dump
	@BUILD=build-emu bash tests/emu_test.sh

$(BUILD)/unit_tests_static: $(TEST_OBJ) $(UNIT_CLI_OBJ) $(STATIC)
	$(CC) $(CFLAGS) -static -o $@ $(TEST_OBJ) $(UNIT_CLI_OBJ) $(STATIC) $(TEST_LIBS) $(LDLIBS) $(WRAP)

# Installs under $(DESTDIR)$(PREFIX); the command finds the model in
# ../share/smallmind beside its bin directory.
PREFIX  ?= /usr/local
BINDIR  ?= $(PREFIX)/bin
LIBDIR  ?= $(PREFIX)/lib
INCDIR  ?= $(PREFIX)/include
DATADIR ?= $(PREFIX)/share/smallmind
install: $(STATIC) $(SHARED) $(CLI)
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(LIBDIR)/pkgconfig $(DESTDIR)$(INCDIR) $(DESTDIR)$(DATADIR)
	install -m 755 $(CLI) $(DESTDIR)$(BINDIR)/smallmind
	install -m 644 $(STATIC) $(DESTDIR)$(LIBDIR)/libsmallmind.a
	install -m 755 $(SHARED) $(DESTDIR)$(LIBDIR)/libsmallmind.so.$(VERSION)
	ln -sf libsmallmind.so.$(VERSION) $(DESTDIR)$(LIBDIR)/$(SONAME)
	ln -sf $(SONAME) $(DESTDIR)$(LIBDIR)/libsmallmind.so
	install -m 644 include/smallmind.h $(DESTDIR)$(INCDIR)/smallmind.h
	install -m 644 models/kjv-3m.gguf $(DESTDIR)$(DATADIR)/kjv-3m.gguf
	install -m 644 models/kjv-chat-3m.gguf $(DESTDIR)$(DATADIR)/kjv-chat-3m.gguf
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@LIBDIR@|$(LIBDIR)|' -e 's|@INCDIR@|$(INCDIR)|' \
		-e 's|@VERSION@|$(VERSION)|' smallmind.pc.in > $(DESTDIR)$(LIBDIR)/pkgconfig/smallmind.pc

uninstall:
	rm -f $(DESTDIR)$(BINDIR)/smallmind $(DESTDIR)$(LIBDIR)/libsmallmind.a $(DESTDIR)$(LIBDIR)/libsmallmind.so \
		$(DESTDIR)$(LIBDIR)/$(SONAME) $(DESTDIR)$(LIBDIR)/libsmallmind.so.$(VERSION) \
		$(DESTDIR)$(LIBDIR)/pkgconfig/smallmind.pc $(DESTDIR)$(INCDIR)/smallmind.h $(DESTDIR)$(DATADIR)/kjv-3m.gguf \
		$(DESTDIR)$(DATADIR)/kjv-chat-3m.gguf
	-rmdir $(DESTDIR)$(DATADIR) 2> /dev/null

clean:
	rm -rf build build-san build-fuzz build-aarch64 build-emu smallmind

-include $(DEPS)
