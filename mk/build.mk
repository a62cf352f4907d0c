# build.mk: lqa-build (dataset/) needs sentencepiece's trainer library on top of the processor.
LDLIBS += -lsentencepiece_train
