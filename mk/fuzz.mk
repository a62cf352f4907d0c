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
	$(FUZZ_CC) $(FUZZ_FLAGS) $^ $(FUZZ_COMMON_LIBS) -o $@

$(FUZZ_OUT)/fuzz_state: tests/fuzz/fuzz_state.c trainer/ckpt.c $(FUZZ_COMMON_SRC)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_FLAGS) $^ $(FUZZ_COMMON_LIBS) -o $@

$(FUZZ_OUT)/fuzz_manifest: tests/fuzz/fuzz_manifest.c dataset/shards.c dataset/shards_dir.c $(FUZZ_COMMON_SRC)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_FLAGS) $^ $(FUZZ_COMMON_LIBS) -o $@

$(FUZZ_OUT)/fuzz_config: tests/fuzz/fuzz_config.c model/hfdir.c common/safetensors.c common/log.c $(FUZZ_COMMON_SRC)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_FLAGS) $^ $(FUZZ_COMMON_LIBS) -o $@

.PHONY: fuzz-safetensors fuzz-state fuzz-manifest fuzz-config
fuzz-safetensors: $(FUZZ_OUT)/fuzz_safetensors
	@mkdir -p $(FUZZ_OUT)/safetensors-corpus
	@printf '\x48\x00\x00\x00\x00\x00\x00\x00{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"__metadata__":{}}    \x00\x00\x80\x3f\x00\x00\x00\x40' > $(FUZZ_OUT)/safetensors-corpus/seed
	$< $(FUZZ_RUN) $(FUZZ_OUT)/safetensors-corpus
fuzz-state: $(FUZZ_OUT)/fuzz_state
	@mkdir -p $(FUZZ_OUT)/state-corpus
	@printf '\x01{"step":4,"optim_t":4,"data":{"seed":"0000000000000001","epoch":"0000000000000000","step":"0000000000000002","rank":0,"world":1},"rng":["0000000000000001","0000000000000002","0000000000000003","0000000000000004"],"elapsed":1.5}' > $(FUZZ_OUT)/state-corpus/seed
	$< $(FUZZ_RUN) $(FUZZ_OUT)/state-corpus
fuzz-manifest: $(FUZZ_OUT)/fuzz_manifest
	@mkdir -p $(FUZZ_OUT)/manifest-corpus
	@printf '{"format":"lqa-shards","version":1,"kind":"lm","dtype":"uint16","packed":false,"template":"none","tokenizer":{"vocab_size":100},"shards":[{"file":"shard-00000.lqas","records":3,"tokens":24},{"file":"shard-00001.lqas","records":3,"tokens":24}],"records":6,"tokens":48}' > $(FUZZ_OUT)/manifest-corpus/seed
	$< $(FUZZ_RUN) $(FUZZ_OUT)/manifest-corpus
fuzz-config: $(FUZZ_OUT)/fuzz_config
	@mkdir -p $(FUZZ_OUT)/config-corpus
	@printf '{"hidden_size":64,"num_hidden_layers":2,"num_attention_heads":4,"num_key_value_heads":2,"intermediate_size":172,"vocab_size":512,"max_position_embeddings":128,"rope_theta":10000.0,"rms_norm_eps":1e-5,"tie_word_embeddings":false,"rope_scaling":{"type":"linear","factor":2.0}}' > $(FUZZ_OUT)/config-corpus/seed
	$< $(FUZZ_RUN) $(FUZZ_OUT)/config-corpus

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
