# rlaif -- one flat GNU make file. Every path and flag is a variable; override on
# the command line (make CC=clang OPT=-O3 PREFIX=$HOME/.local).
#
#   make             build/librlaif.a, build/librlaif.so, build/rlaif/core.so, build/bin/rlaif (+ ./rlaif link)
#   make quickstart  build, then run `rlaif sim` (the paper's experiment in a simulated world)
#   make test        C tests under ASan+UBSan, busted specs (also under ASan), luacheck, check
#                    (the model tests once more with RLAIF_KERNELS=scalar)
#   make fuzz        libFuzzer harnesses (clang, ASan+UBSan) FUZZ_TIME s each, then the
#                    random-argument fuzzer of every Lua binding; crashes go to build/fuzz/
#   make mutate      plant each bug of scripts/mutations.txt in a copy; report the survivors
#   make bench       benchmarks, one JSON line per measurement
#   make check       the pure C core never includes Lua headers
#   make install     PREFIX/bin, lib (librlaif.a/.so, pkgconfig, lua/5.4), include, share/lua/5.4, share/rlaif
#   make uninstall   removes exactly what install put there (scripts/install.sh keeps a manifest)

CC       ?= cc
PREFIX   ?= /usr/local
BUILD    ?= build
OPT      ?= -O2 -march=x86-64-v2 -mtune=native
CFLAGS   ?= $(OPT) -g
LDFLAGS  ?=
MULTIARCH := $(shell $(CC) -print-multiarch 2>/dev/null || echo x86_64-linux-gnu)

LUA      ?= lua5.4
BUSTED   ?= /usr/bin/busted
LUACHECK ?= luacheck
LUA_INCDIR  ?= /usr/include/lua5.4
LUA_STATIC  ?= /usr/lib/$(MULTIARCH)/liblua5.4.a
BLIS_INCDIR ?= /usr/include/$(MULTIARCH)/blis-openmp
BLIS_LIBDIR ?= /usr/lib/$(MULTIARCH)/blis-openmp
CJSON_INCDIR ?= /usr/include/cjson
EDIT_INCDIR  ?= /usr/include/editline

WARN     = -Wall -Wextra -Wshadow -Wno-unused-parameter -Wno-sign-compare
BASE_CFLAGS = -std=c11 -D_GNU_SOURCE $(WARN) -fPIC -fopenmp -Isrc/core -Iinclude \
              -isystem $(BLIS_INCDIR) -I$(CJSON_INCDIR)
CORE_LIBS = -L$(BLIS_LIBDIR) -Wl,-rpath,$(BLIS_LIBDIR) -lblis -lcjson -lpcre2-8 -lutf8proc -lcurl -lsqlite3 -lz -lmicrohttpd \
            -fopenmp -lm -lpthread
# MPI (rlaif.dist, src/core/dist.c): built in when OpenMPI's pkg-config file or
# mpicc is found; `make WITH_MPI=0` builds without it (one process, rank 0 of 1).
ifndef WITH_MPI
WITH_MPI := $(shell pkg-config --exists ompi-c 2>/dev/null && echo 1 || \
              { mpicc --showme >/dev/null 2>&1 && echo 1 || echo 0; })
endif
ifeq ($(WITH_MPI),1)
ifndef MPI_CFLAGS
MPI_CFLAGS := $(shell pkg-config --cflags ompi-c 2>/dev/null || mpicc --showme:compile)
endif
ifndef MPI_LIBS
MPI_LIBS := $(shell pkg-config --libs ompi-c 2>/dev/null || mpicc --showme:link)
endif
DIST_CFLAGS = -DRLAIF_WITH_MPI $(patsubst -I%,-isystem %,$(MPI_CFLAGS))
CORE_LIBS += $(MPI_LIBS)
endif
# float-cast-overflow: gcc leaves it out of "undefined"; casting 1e40 into an int is how crafted
# JSON numbers turn into wild sizes, so the tests check for it too
SAN      = -fsanitize=address,undefined,float-cast-overflow -fno-omit-frame-pointer \
           -fno-sanitize-recover=undefined,float-cast-overflow

CORE_SRC = $(wildcard src/core/*.c)
LUA_SRC  = $(wildcard src/lua/*.c)
CORE_OBJ = $(CORE_SRC:src/core/%.c=$(BUILD)/obj/core/%.o)
LUA_OBJ  = $(LUA_SRC:src/lua/%.c=$(BUILD)/obj/lua/%.o)
ASAN_CORE_OBJ = $(CORE_SRC:src/core/%.c=$(BUILD)/asan/core/%.o)
ASAN_LUA_OBJ  = $(LUA_SRC:src/lua/%.c=$(BUILD)/asan/lua/%.o)
HEADERS  = $(wildcard src/core/*.h src/lua/*.h include/*.h include/rlaif/*.h)
C_TESTS  = $(patsubst tests/c/%.c,$(BUILD)/tests/%,$(wildcard tests/c/test_*.c))

.PHONY: all deps quickstart test test-c test-lua test-lua-asan test-fuzz test-npm lint check bench fuzz mutate install uninstall clean
.DELETE_ON_ERROR:

all: deps $(BUILD)/librlaif.a $(BUILD)/rlaif/core.so $(BUILD)/bin/rlaif rlaif

deps:
	@sh scripts/install-deps.sh

# ---- objects ----
$(BUILD)/obj/core/%.o: src/core/%.c $(HEADERS)
	@mkdir -p $(@D)
	$(CC) $(BASE_CFLAGS) $(CFLAGS) -c $< -o $@
# only dist.c sees mpi.h; the stamp rebuilds it when WITH_MPI changes
MPI_STAMP = $(BUILD)/mpi-$(WITH_MPI).stamp
$(MPI_STAMP):
	@mkdir -p $(@D) && rm -f $(BUILD)/mpi-*.stamp && touch $@
$(BUILD)/obj/core/dist.o $(BUILD)/asan/core/dist.o: BASE_CFLAGS += $(DIST_CFLAGS)
$(BUILD)/obj/core/dist.o $(BUILD)/asan/core/dist.o: $(MPI_STAMP)
$(BUILD)/obj/lua/%.o: src/lua/%.c $(HEADERS)
	@mkdir -p $(@D)
	$(CC) $(BASE_CFLAGS) -I$(LUA_INCDIR) $(CFLAGS) -c $< -o $@
$(BUILD)/obj/main.o: src/main.c $(HEADERS)
	@mkdir -p $(@D)
	$(CC) $(BASE_CFLAGS) -I$(LUA_INCDIR) -I$(EDIT_INCDIR) -DRLAIF_PREFIX='"$(PREFIX)"' $(CFLAGS) -c $< -o $@

# ---- artifacts ----
$(BUILD)/librlaif.a: $(CORE_OBJ)
	@mkdir -p $(@D)
	rm -f $@ && ar rcs $@ $^

# The module never links liblua: the host interpreter provides it. -z nodelete
# keeps it (and libgomp) mapped after lua_close, so idle OpenMP worker threads
# never outlive their code when a stock lua5.4 unloads C modules at exit.
$(BUILD)/rlaif/core.so: $(LUA_OBJ) $(BUILD)/librlaif.a
	@mkdir -p $(@D)
	$(CC) -shared $(CFLAGS) $(LDFLAGS) -Wl,-z,nodelete -o $@ $(LUA_OBJ) $(BUILD)/librlaif.a $(CORE_LIBS)

# The executable links liblua statically and exports its symbols (-Wl,-E).
$(BUILD)/bin/rlaif: $(BUILD)/obj/main.o $(LUA_OBJ) $(BUILD)/librlaif.a
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(LDFLAGS) -Wl,-E -o $@ $(BUILD)/obj/main.o $(LUA_OBJ) $(BUILD)/librlaif.a \
	    $(LUA_STATIC) -ledit $(CORE_LIBS) -ldl

rlaif: $(BUILD)/bin/rlaif
	ln -sf $(BUILD)/bin/rlaif rlaif

# the build in parallel even under a plain `make quickstart`: a fresh machine has it all to compile
quickstart:
	@$(MAKE) --no-print-directory -j$$(nproc 2>/dev/null || echo 2) all
	./rlaif sim

# ---- tests ----
$(BUILD)/asan/core/%.o: src/core/%.c $(HEADERS)
	@mkdir -p $(@D)
	$(CC) $(BASE_CFLAGS) -O1 -g $(SAN) -c $< -o $@
$(BUILD)/asan/lua/%.o: src/lua/%.c $(HEADERS)
	@mkdir -p $(@D)
	$(CC) $(BASE_CFLAGS) -I$(LUA_INCDIR) -O1 -g $(SAN) -c $< -o $@
$(BUILD)/tests/%: tests/c/%.c tests/c/check.h $(ASAN_CORE_OBJ)
	@mkdir -p $(@D)
	$(CC) $(BASE_CFLAGS) -Itests/c -O1 -g $(SAN) -o $@ $< $(ASAN_CORE_OBJ) $(CORE_LIBS)
$(BUILD)/asan/rlaif/core.so: $(ASAN_LUA_OBJ) $(ASAN_CORE_OBJ)
	@mkdir -p $(@D)
	$(CC) -shared $(SAN) -Wl,-z,nodelete -o $@ $^ $(CORE_LIBS)

test: all test-c test-lua test-lua-asan test-fuzz lint check

# Kernels with a SIMD version (src/core/kernels.c) run twice: on this CPU's
# path and with RLAIF_KERNELS=scalar, the portable loops a CPU without AVX-512 runs.
SCALAR_C_TESTS = $(BUILD)/tests/test_model
SCALAR_SPECS   = tests/spec/model_spec.lua tests/spec/train_resume_spec.lua tests/spec/generate_spec.lua

# MPI tests run two processes on this machine (as root too, on any core count, without
# pinning, over shared memory only); OpenMPI's own leaks are not ours to report
MPIRUN ?= mpirun --allow-run-as-root --oversubscribe --bind-to none --mca pml ob1 --mca btl self,vader \
          --mca btl_vader_single_copy_mechanism none

test-c: deps $(C_TESTS)
	@set -e; for t in $(C_TESTS); do echo "== $$t"; ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=1 $$t; done
	@set -e; for t in $(SCALAR_C_TESTS); do echo "== $$t (RLAIF_KERNELS=scalar)"; \
	    RLAIF_KERNELS=scalar ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=1 $$t; done
	@if [ "$(WITH_MPI)" = 1 ]; then echo "== $(BUILD)/tests/test_dist (mpirun -np 2)"; \
	    ASAN_OPTIONS=detect_leaks=0:allocator_may_return_null=1 $(MPIRUN) -np 2 $(BUILD)/tests/test_dist; fi

# the pinned npm references some specs drive (openai SDK, llama.cpp); cached in build/npm-test
test-npm:
	@sh scripts/test-npm.sh

test-lua: all test-npm
	$(LUA) $(BUSTED)
	RLAIF_KERNELS=scalar $(LUA) $(BUSTED) $(SCALAR_SPECS)

# The same specs with the module built under ASan+UBSan, preloaded into stock lua5.4.
ASAN_RT = $(shell $(CC) -print-file-name=libasan.so) $(shell $(CC) -print-file-name=libubsan.so)
test-lua-asan: all test-npm $(BUILD)/asan/rlaif/core.so
	LD_PRELOAD="$(ASAN_RT)" ASAN_OPTIONS=detect_leaks=0:allocator_may_return_null=1 \
	    $(LUA) $(BUSTED) --run=asan

# ---- fuzzing ----
# Harnesses in tests/fuzz/fuzz_<name>.c; fuzz_llm.c is built once per response
# format. `make test` replays the seeds and the committed crash fixtures through
# gcc ASan+UBSan builds (no clang needed) and runs the Lua binding fuzzer
# briefly; `make fuzz` builds them with clang's libFuzzer and fuzzes each for
# FUZZ_TIME seconds (scripts/fuzz.sh has the corpus folders and options).
FUZZ_CC   ?= clang
FUZZ_TIME ?= 10
LLM_FORMATS = openai-chat openai-completions llamacpp ollama tgi gemini anthropic
FUZZ_NAMES = safetensors model gguf state tokenizer_json tiktoken sse gz json $(LLM_FORMATS:%=llm_%)
FUZZ_SAN  = -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
# clang 14 drops target("avx512f") on OpenMP-outlined regions, so the fuzz build
# compiles the OpenMP pragmas away (one thread; the targets are the parsers)
FUZZ_CFLAGS = $(filter-out -fopenmp,$(BASE_CFLAGS)) -Wno-unknown-pragmas -Wno-unused-variable -O1 -g $(FUZZ_SAN)
FUZZ_CORE_OBJ = $(CORE_SRC:src/core/%.c=$(BUILD)/fuzz/core/%.o)
FUZZ_BINS   = $(FUZZ_NAMES:%=$(BUILD)/fuzz/bin/fuzz_%)
REPLAY_OBJ  = $(FUZZ_NAMES:%=$(BUILD)/fuzz/replay/fuzz_%.o)
FUZZ_ID   = $(subst -,_,$*)
FUZZ_FMT = $(if $(filter llm_%,$*),-DFUZZ_FORMAT='"$(patsubst llm_%,%,$*)"')
FUZZ_SRC = tests/fuzz/fuzz_$(if $(filter llm_%,$*),llm,$*).c

.SECONDARY: $(FUZZ_CORE_OBJ) $(BUILD)/fuzz/lua_json.o
$(BUILD)/fuzz/core/%.o: src/core/%.c $(HEADERS)
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -c $< -o $@
$(BUILD)/fuzz/lua_json.o: src/lua/l_json.c $(HEADERS)
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -I$(LUA_INCDIR) -fsanitize=fuzzer-no-link -c $< -o $@
.SECONDEXPANSION:
$(BUILD)/fuzz/bin/fuzz_%: $$(FUZZ_SRC) tests/fuzz/fuzz.h $(FUZZ_CORE_OBJ) $(BUILD)/fuzz/lua_json.o
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -I$(LUA_INCDIR) -Itests/fuzz -fsanitize=fuzzer $(FUZZ_FMT) \
	    -o $@ $(FUZZ_SRC) $(FUZZ_CORE_OBJ) $(BUILD)/fuzz/lua_json.o $(LUA_STATIC) $(CORE_LIBS) -ldl
# the replay: every harness in one gcc ASan binary, entry points renamed per harness
$(BUILD)/fuzz/replay/fuzz_%.o: $$(FUZZ_SRC) tests/fuzz/fuzz.h $(HEADERS)
	@mkdir -p $(@D)
	$(CC) $(BASE_CFLAGS) -I$(LUA_INCDIR) -Itests/fuzz -O1 -g $(SAN) $(FUZZ_FMT) \
	    -DLLVMFuzzerTestOneInput=fuzz_one_$(FUZZ_ID) -DLLVMFuzzerInitialize=fuzz_init_$(FUZZ_ID) -c $(FUZZ_SRC) -o $@
$(BUILD)/fuzz/replay/replay: tests/fuzz/replay.c tests/fuzz/fuzz.h $(REPLAY_OBJ) $(ASAN_CORE_OBJ) $(BUILD)/asan/lua/l_json.o
	$(CC) $(BASE_CFLAGS) -Itests/fuzz -O1 -g $(SAN) '-DFUZZ_LIST=$(foreach n,$(subst -,_,$(FUZZ_NAMES)),X($(n)))' \
	    -o $@ tests/fuzz/replay.c $(REPLAY_OBJ) $(ASAN_CORE_OBJ) $(BUILD)/asan/lua/l_json.o $(LUA_STATIC) $(CORE_LIBS) -ldl

test-fuzz: deps $(BUILD)/fuzz/replay/replay $(BUILD)/asan/rlaif/core.so
	@sh scripts/fuzz.sh replay $(BUILD) $(FUZZ_NAMES)
	@CC=$(CC) LUA=$(LUA) sh scripts/fuzz.sh lua $(BUILD) --calls 3000 --seed 1

fuzz: deps all $(FUZZ_BINS) $(BUILD)/asan/rlaif/core.so
	@sh scripts/fuzz.sh run $(BUILD) $(FUZZ_TIME) $(FUZZ_NAMES)
	@CC=$(CC) LUA=$(LUA) sh scripts/fuzz.sh lua $(BUILD) --seconds $(FUZZ_TIME)

lint:
	$(LUACHECK) -q --no-color lua tests scripts examples

check:
	@if grep -rlE '#[[:space:]]*include[[:space:]]*[<"](lua|lauxlib|lualib)\.h' src/core; then \
	    echo "check: src/core must not include Lua headers"; exit 1; fi
	@echo "check: src/core is pure C"

bench: all
	@sh scripts/bench/setup.sh
	@sh scripts/bench/run.sh

# Not part of `make test`: minutes per run. MUTATE_ONLY=name,... runs a subset.
mutate:
	@bash scripts/mutate.sh $(MUTATE_ONLY)

# ---- install ----
# Everything `make install` puts under PREFIX, one item per line (scripts/install.sh):
#   MODE:SOURCE:TARGET  a file   tree:DIR:TARGET  a directory's files   link:VALUE:TARGET  a symlink
INSTALL_ITEMS = \
    755:$(BUILD)/bin/rlaif:bin/rlaif \
    644:$(BUILD)/rlaif/core.so:lib/lua/5.4/rlaif/core.so \
    tree:lua/rlaif:share/lua/5.4/rlaif \
    tree:prompts:share/rlaif/prompts \
    $(EMBED_INSTALL_ITEMS)

install: all
	@sh scripts/install.sh install '$(DESTDIR)$(PREFIX)' $(INSTALL_ITEMS)

uninstall:
	@sh scripts/install.sh uninstall '$(DESTDIR)$(PREFIX)'

clean:
	rm -rf $(BUILD) rlaif

# ---- embedding: public headers, librlaif.so, pkg-config, luarocks (issue 12) ----
# include/ holds the public API (rlaif.h + rlaif/*.h; the internal headers in
# src/core include their public parts). src/embed is the Lua state a host owns;
# it needs lua.h, so it is not in src/core. librlaif.so links the system's shared
# liblua5.4 -- one Lua per process, so a host driving the state through
# rlaif_state_lua uses the same copy -- and exports only the public API
# (src/embed/rlaif.map); core.so still never links liblua.
SOVERSION   = 0
VERSION    := $(shell sed -n 's/^\#define RLAIF_VERSION "\(.*\)"/\1/p' include/rlaif/common.h)
LUA_SHARED ?= -llua5.4
EMBED_SRC   = $(wildcard src/embed/*.c)
EMBED_OBJ   = $(EMBED_SRC:src/embed/%.c=$(BUILD)/obj/embed/%.o)
ASAN_EMBED_OBJ = $(EMBED_SRC:src/embed/%.c=$(BUILD)/asan/embed/%.o)
PUBLIC_HEADERS = include/rlaif.h $(wildcard include/rlaif/*.h)
SO_MAP      = src/embed/rlaif.map
SO_FLAGS    = -shared -Wl,-soname,librlaif.so.$(SOVERSION) -Wl,--version-script=$(SO_MAP) -Wl,-z,defs \
              -Wl,-z,nodelete
EMBED_CFLAGS = -Isrc/lua -I$(LUA_INCDIR) -DRLAIF_PREFIX='"$(PREFIX)"'
EMBED_TESTS = $(patsubst tests/embed/%.c,$(BUILD)/tests/embed/%,$(wildcard tests/embed/test_*.c))

EMBED_INSTALL_ITEMS = \
    644:$(BUILD)/librlaif.a:lib/librlaif.a \
    755:$(BUILD)/librlaif.so.$(VERSION):lib/librlaif.so.$(VERSION) \
    link:librlaif.so.$(VERSION):lib/librlaif.so.$(SOVERSION) \
    link:librlaif.so.$(SOVERSION):lib/librlaif.so \
    644:$(BUILD)/rlaif.pc:lib/pkgconfig/rlaif.pc \
    644:include/rlaif.h:include/rlaif.h \
    tree:include/rlaif:include/rlaif
EMBED_INSTALL_DEPS = $(BUILD)/librlaif.so rlaif-pc

.PHONY: rlaif-pc test-embed check-embed rock rock-install
all: $(BUILD)/librlaif.so
install: $(EMBED_INSTALL_DEPS)
# librlaif.a also holds the Lua binding and the embedding API: the same API as
# librlaif.so for hosts that link statically (they add -llua5.4). Archive
# members nobody references (as here in core.so and the executable) are not linked.
$(BUILD)/librlaif.a: $(LUA_OBJ) $(EMBED_OBJ)
test: test-embed
check: check-embed

$(BUILD)/obj/embed/%.o: src/embed/%.c src/embed/embed.h $(HEADERS)
	@mkdir -p $(@D)
	$(CC) $(BASE_CFLAGS) $(EMBED_CFLAGS) $(CFLAGS) -c $< -o $@
$(BUILD)/asan/embed/%.o: src/embed/%.c src/embed/embed.h $(HEADERS)
	@mkdir -p $(@D)
	$(CC) $(BASE_CFLAGS) $(EMBED_CFLAGS) -O1 -g $(SAN) -c $< -o $@

$(BUILD)/librlaif.so.$(VERSION): $(CORE_OBJ) $(LUA_OBJ) $(EMBED_OBJ) $(SO_MAP)
	$(CC) $(SO_FLAGS) $(CFLAGS) $(LDFLAGS) -o $@ $(CORE_OBJ) $(LUA_OBJ) $(EMBED_OBJ) $(LUA_SHARED) $(CORE_LIBS)
$(BUILD)/librlaif.so: $(BUILD)/librlaif.so.$(VERSION)
	ln -sf librlaif.so.$(VERSION) $(BUILD)/librlaif.so.$(SOVERSION)
	ln -sf librlaif.so.$(VERSION) $@

# The same library under ASan+UBSan, for the embedding tests (tests/embed).
$(BUILD)/asan/librlaif.so: $(ASAN_CORE_OBJ) $(ASAN_LUA_OBJ) $(ASAN_EMBED_OBJ) $(SO_MAP)
	@mkdir -p $(@D)
	$(CC) $(SO_FLAGS) $(SAN) -o $@.$(VERSION) $(ASAN_CORE_OBJ) $(ASAN_LUA_OBJ) $(ASAN_EMBED_OBJ) \
	    $(LUA_SHARED) $(CORE_LIBS)
	ln -sf librlaif.so.$(VERSION) $(BUILD)/asan/librlaif.so.$(SOVERSION)
	ln -sf librlaif.so.$(VERSION) $@

# pkg-config: written at install time, so it names the PREFIX installed to.
rlaif-pc:
	@mkdir -p $(BUILD)
	@printf '%s\n' 'prefix=$(PREFIX)' 'exec_prefix=$${prefix}' 'libdir=$${exec_prefix}/lib' \
	    'includedir=$${prefix}/include' 'luadir=$${prefix}/share/lua/5.4' 'cmoddir=$${prefix}/lib/lua/5.4' '' \
	    'Name: rlaif' 'Description: Reinforcement Learning from AI Feedback: a C toolkit with embedded Lua 5.4' \
	    'Version: $(VERSION)' 'Requires.private: lua5.4' 'Libs: -L$${libdir} -lrlaif' \
	    'Libs.private: $(CORE_LIBS) -ldl' 'Cflags: -I$${includedir}' > $(BUILD)/rlaif.pc

# Tests: compiled against the public headers only, linked with the ASan library.
$(BUILD)/tests/embed/%: tests/embed/%.c tests/c/check.h $(PUBLIC_HEADERS) $(BUILD)/asan/librlaif.so
	@mkdir -p $(@D)
	$(CC) -std=c11 -D_GNU_SOURCE $(WARN) -Iinclude -I$(LUA_INCDIR) -Itests/c -O1 -g $(SAN) -o $@ $< \
	    -L$(BUILD)/asan -Wl,-rpath,$(abspath $(BUILD)/asan) -lrlaif $(LUA_SHARED) -lpthread -lm

test-embed: $(BUILD)/librlaif.so $(EMBED_TESTS)
	@set -e; for t in $(EMBED_TESTS); do echo "== $$t"; \
	    ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=1 $$t; done
	@MAKE='$(MAKE)' BUILD='$(BUILD)' CC='$(CC)' sh tests/embed/install_test.sh

# The public API is exactly what librlaif.so exports, and every file-opening
# call in src/core goes through the sandbox's file policy (rlaif_path_gate).
check-embed: $(BUILD)/librlaif.so
	@sh tests/embed/check_api.sh $(BUILD)/librlaif.so

# luarocks (rlaif-scm-1.rockspec, build type "make"): the module, the Lua files
# and the prompt templates into a rocks tree.
rock: $(BUILD)/rlaif/core.so
rock-install: rock
	install -d '$(INST_LIBDIR)/rlaif' '$(INST_LUADIR)/rlaif/prompts'
	install -m 755 $(BUILD)/rlaif/core.so '$(INST_LIBDIR)/rlaif/core.so'
	cp -R lua/rlaif '$(INST_LUADIR)/'
	cp -R prompts/. '$(INST_LUADIR)/rlaif/prompts/'

