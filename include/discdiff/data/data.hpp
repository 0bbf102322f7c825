// discdiff/data/data.hpp: umbrella header of the data module (namespace
// discdiff::data): tokenizers (tokenizer.hpp), corpus reading, splits, crops
// and evaluation chunks (corpus.hpp; .xz input needs DISCDIFF_HAVE_LZMA=1 and
// liblzma), and the synthetic Markov source with exact entropies (markov.hpp).
// Host only; errors are std::invalid_argument / std::runtime_error as
// documented in each header.
#pragma once

#include "corpus.hpp"
#include "markov.hpp"
#include "tokenizer.hpp"
