# mk/bench_xml.mk: the XML-family parser benchmark driver (bench/xml_parse_bench.c) and the
# MediaWiki streaming benchmark (bench/mediawiki.sh).
.PHONY: bench-mediawiki
$(BUILD)/bench/lqa-xml-bench: bench/xml_parse_bench.c $(BUILD)/liblqa.a
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) $(LDFLAGS) $< $(BUILD)/liblqa.a $(LDLIBS) -o $@

bench-mediawiki: $(BUILD)/bench/lqa-xml-bench
	BUILD=$(BUILD) bench/mediawiki.sh
