# sentencepiece.mk: the tokenizer shim (dataset/tokenizer.cc, the one C++ file) calls sentencepiece's
# trainer as well as its processor (lqa_tok_train, for lqa-build), so every binary that links the
# shim needs libsentencepiece_train: lqa-build, lqa-sft (init reads the tokenizer), lqa-eval and
# the tests that tokenize. --as-needed keeps it off every other binary (lqa-ingest, most tests).
LDLIBS += -Wl,--push-state,--as-needed -lsentencepiece_train -Wl,--pop-state
