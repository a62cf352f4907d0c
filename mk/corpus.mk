# corpus.mk: `make corpus` lays out the default corpus (build/corpus/) from installed Debian
# packages; see scripts/corpus.sh and docs/CORPUS.md.
.PHONY: corpus
corpus: deps
	@scripts/corpus.sh build/corpus
