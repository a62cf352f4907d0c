# fuzz.mk: `make fuzz` runs the libFuzzer targets briefly (FUZZ_SECONDS each, default 30).
# Built with clang -fsanitize=fuzzer,address,undefined into $(BUILD)/fuzz, apart from the
# regular objects. Other areas add their targets as prerequisites of `fuzz`.
FUZZ_SECONDS ?= 30
FUZZ_CC ?= clang
FUZZ_OUT := $(BUILD)/fuzz
FUZZ_SHARD_SRC := dataset/shards.c common/hash.c common/check.c common/escape.c common/fileio.c common/rng.c
FUZZ_SHARD_LIBS := -lzstd -lxxhash -lnettle -lsqlite3 -lm

$(FUZZ_OUT)/fuzz_shard: tests/fuzz/fuzz_shard.c $(FUZZ_SHARD_SRC) dataset/shards.h
	@mkdir -p $(dir $@)
	$(FUZZ_CC) -g -O1 -std=c11 -D_GNU_SOURCE -I. -DFUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION \
	    -fsanitize=fuzzer,address,undefined tests/fuzz/fuzz_shard.c $(FUZZ_SHARD_SRC) $(FUZZ_SHARD_LIBS) -o $@

$(FUZZ_OUT)/make_seeds: tests/fuzz/make_seeds.c $(FUZZ_SHARD_SRC) dataset/shards.h
	@mkdir -p $(dir $@)
	$(FUZZ_CC) -g -O1 -std=c11 -D_GNU_SOURCE -I. tests/fuzz/make_seeds.c $(FUZZ_SHARD_SRC) $(FUZZ_SHARD_LIBS) -o $@

.PHONY: fuzz-shard
fuzz-shard: $(FUZZ_OUT)/fuzz_shard $(FUZZ_OUT)/make_seeds
	@mkdir -p $(FUZZ_OUT)/shard-corpus
	$(FUZZ_OUT)/make_seeds $(FUZZ_OUT)/shard-corpus
	$(FUZZ_OUT)/fuzz_shard -max_total_time=$(FUZZ_SECONDS) -rss_limit_mb=2048 -malloc_limit_mb=1024 \
	    -print_final_stats=1 $(FUZZ_OUT)/shard-corpus

fuzz: fuzz-shard

# The text parser and the QA-set importers.
# ingest/parse.c holds lqa_parse_warn, and with it the dispatcher's links to the XML parsers.
FUZZ_INGEST_SRC := ingest/text.c ingest/qaset.c ingest/input.c ingest/docbuild.c store/doc.c common/check.c \
                   common/buf.c common/hash.c common/escape.c common/fileio.c ingest/parse.c $(wildcard ingest/xml*.c)
FUZZ_INGEST_LIBS := $(shell pkg-config --libs libxml-2.0 2>/dev/null || echo -lxml2) -larchive -ljansson -lutf8proc \
                    -lxxhash -lnettle -lz -lbz2 -llzma -lzstd -lsqlite3 -lm
FUZZ_INGEST_FLAGS := -g -O1 -std=c11 -D_GNU_SOURCE -I. $(XML_CFLAGS) -fsanitize=fuzzer,address,undefined
$(FUZZ_OUT)/fuzz_ingest_%: tests/fuzz/fuzz_ingest_%.c $(FUZZ_INGEST_SRC)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_INGEST_FLAGS) $< $(FUZZ_INGEST_SRC) $(FUZZ_INGEST_LIBS) -o $@

.PHONY: fuzz-ingest
fuzz-ingest: $(FUZZ_OUT)/fuzz_ingest_text $(FUZZ_OUT)/fuzz_ingest_qaset
	@mkdir -p $(FUZZ_OUT)/ingest-text-corpus $(FUZZ_OUT)/ingest-qaset-corpus
	cp tests/fixtures/text/* $(FUZZ_OUT)/ingest-text-corpus/
	cp tests/fixtures/qaset/* $(FUZZ_OUT)/ingest-qaset-corpus/
	for c in gzip bzip2 xz zstd; do $$c -c tests/fixtures/qaset/alpaca.json > $(FUZZ_OUT)/ingest-qaset-corpus/alpaca.$$c; done
	$(FUZZ_OUT)/fuzz_ingest_text -max_total_time=$(FUZZ_SECONDS) -max_len=65536 -rss_limit_mb=2048 \
	    -print_final_stats=1 $(FUZZ_OUT)/ingest-text-corpus
	$(FUZZ_OUT)/fuzz_ingest_qaset -max_total_time=$(FUZZ_SECONDS) -max_len=65536 -rss_limit_mb=2048 \
	    -print_final_stats=1 $(FUZZ_OUT)/ingest-qaset-corpus
fuzz: fuzz-ingest

# Untrusted file headers: safetensors headers, checkpoints' state.json, shard manifests, model config.json.
FUZZ_FLAGS := -g -O1 -std=c11 -D_GNU_SOURCE -I. -fsanitize=fuzzer,address,undefined
FUZZ_COMMON_SRC := common/check.c common/escape.c common/fileio.c common/json.c common/hash.c common/rng.c
FUZZ_COMMON_LIBS := -ljansson -lzstd -lxxhash -lnettle -lsqlite3 -lm
FUZZ_RUN = -max_total_time=$(FUZZ_SECONDS) -rss_limit_mb=2048 -malloc_limit_mb=1024 -print_final_stats=1

$(FUZZ_OUT)/fuzz_safetensors: tests/fuzz/fuzz_safetensors.c common/safetensors.c $(FUZZ_COMMON_SRC)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_FLAGS) $(filter %.c,$^) $(FUZZ_COMMON_LIBS) -o $@

$(FUZZ_OUT)/fuzz_state: tests/fuzz/fuzz_state.c trainer/ckpt.c $(FUZZ_COMMON_SRC)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_FLAGS) $(filter %.c,$^) $(FUZZ_COMMON_LIBS) -o $@

$(FUZZ_OUT)/fuzz_manifest: tests/fuzz/fuzz_manifest.c dataset/shards.c dataset/shards_dir.c $(FUZZ_COMMON_SRC)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_FLAGS) $(filter %.c,$^) $(FUZZ_COMMON_LIBS) -o $@

$(FUZZ_OUT)/fuzz_config: tests/fuzz/fuzz_config.c model/hfconfig.c common/log.c $(FUZZ_COMMON_SRC)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_FLAGS) $(filter %.c,$^) $(FUZZ_COMMON_LIBS) -o $@

.PHONY: fuzz-safetensors fuzz-state fuzz-manifest fuzz-config
# Seeds: tests/fuzz/seeds/TARGET (one valid header each), also replayed by test_fuzz_smoke.sh.
fuzz-safetensors fuzz-state fuzz-manifest fuzz-config: fuzz-%: $(FUZZ_OUT)/fuzz_%
	@mkdir -p $(FUZZ_OUT)/$*-corpus
	cp tests/fuzz/seeds/$*/* $(FUZZ_OUT)/$*-corpus/
	$< $(FUZZ_RUN) $(FUZZ_OUT)/$*-corpus

fuzz: fuzz-safetensors fuzz-state fuzz-manifest fuzz-config
# The XML family (issue 16): one binary per parser, so each gets its own executions. The XML
# formats share tests/fuzz/fuzz_ingest_xml.c built with -DFUZZ_FORMAT; MediaWiki and EPUB read a
# memory file through the input layer. Seeds: tests/fixtures/xml, and EPUBs zipped from them.
FUZZ_XML_FORMATS := html docbook jats tei mallard
FUZZ_XML_SRC := $(wildcard ingest/xml*.c) ingest/docbuild.c store/doc.c ingest/input.c ingest/text.c ingest/parse.c \
                ingest/qaset.c common/check.c common/escape.c common/fileio.c common/buf.c common/hash.c
FUZZ_XML_LIBS := $(shell pkg-config --libs libxml-2.0 2>/dev/null || echo -lxml2) -larchive -ljansson -lutf8proc \
                 -lxxhash -lnettle -lz -lbz2 -llzma -lzstd -lsqlite3 -lm
FUZZ_XML_FLAGS := -g -O1 -std=c11 -D_GNU_SOURCE -I. $(XML_CFLAGS) -fsanitize=fuzzer,address,undefined
FUZZ_XML_BINS := $(FUZZ_XML_FORMATS:%=$(FUZZ_OUT)/fuzz_xml_%) $(FUZZ_OUT)/fuzz_xml_mediawiki $(FUZZ_OUT)/fuzz_xml_epub

$(FUZZ_OUT)/fuzz_xml_%: tests/fuzz/fuzz_ingest_xml.c tests/fuzz/fuzz_doc_check.h $(FUZZ_XML_SRC)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_XML_FLAGS) -DFUZZ_FORMAT='"$*"' $< $(FUZZ_XML_SRC) $(FUZZ_XML_LIBS) -o $@
$(FUZZ_OUT)/fuzz_xml_mediawiki: tests/fuzz/fuzz_ingest_mediawiki.c tests/fuzz/fuzz_doc_check.h $(FUZZ_XML_SRC)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_XML_FLAGS) $< $(FUZZ_XML_SRC) $(FUZZ_XML_LIBS) -o $@
$(FUZZ_OUT)/fuzz_xml_epub: tests/fuzz/fuzz_ingest_epub.c tests/fuzz/fuzz_doc_check.h $(FUZZ_XML_SRC)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_XML_FLAGS) $< $(FUZZ_XML_SRC) $(FUZZ_XML_LIBS) -o $@

# Seed corpora: every fixture for every XML format (the parsers must survive each other's
# markup), the HTML findings of tests/fuzz/findings, the dump for MediaWiki, two small EPUBs
# (mimetype first, and mimetype last).
.PHONY: fuzz-xml-seeds fuzz-xml
fuzz-xml-seeds:
	@for f in $(FUZZ_XML_FORMATS) mediawiki epub; do mkdir -p $(FUZZ_OUT)/xml-$$f-corpus; done
	@for f in $(FUZZ_XML_FORMATS); do cp tests/fixtures/xml/* $(FUZZ_OUT)/xml-$$f-corpus/; done
	@cp tests/fuzz/findings/*.html $(FUZZ_OUT)/xml-html-corpus/ # fixed findings: every run replays them
	@cp tests/fixtures/xml/mediawiki.xml $(FUZZ_OUT)/xml-mediawiki-corpus/
	@gzip -c tests/fixtures/xml/mediawiki.xml > $(FUZZ_OUT)/xml-mediawiki-corpus/mediawiki.xml.gz
	@tests/fuzz/make_epub_seeds.sh $(FUZZ_OUT)/xml-epub-corpus

fuzz-xml: $(FUZZ_XML_BINS) fuzz-xml-seeds
	for f in $(FUZZ_XML_FORMATS) mediawiki epub; do \
	    $(FUZZ_OUT)/fuzz_xml_$$f -max_total_time=$(FUZZ_SECONDS) -max_len=65536 -rss_limit_mb=2048 \
	        -print_final_stats=1 $(FUZZ_OUT)/xml-$$f-corpus || exit 1; done
fuzz: fuzz-xml

# Every target, built by `make test` (where clang is installed) for tests/fuzz/test_fuzz_smoke.sh,
# so that a harness that stops building or linking fails the tests, not the next `make fuzz`.
FUZZ_BINS := $(FUZZ_OUT)/make_seeds $(FUZZ_OUT)/fuzz_shard $(FUZZ_OUT)/fuzz_ingest_text $(FUZZ_OUT)/fuzz_ingest_qaset \
             $(FUZZ_OUT)/fuzz_safetensors $(FUZZ_OUT)/fuzz_state $(FUZZ_OUT)/fuzz_manifest $(FUZZ_OUT)/fuzz_config \
             $(FUZZ_XML_BINS)
# The project's headers, so that a changed struct rebuilds the targets (they keep no .d files).
$(FUZZ_BINS): $(wildcard common/*.h dataset/*.h ingest/*.h store/*.h model/*.h trainer/*.h kernels/*.h)
.PHONY: fuzz-build
fuzz-build: $(if $(shell command -v $(FUZZ_CC)),$(FUZZ_BINS))
