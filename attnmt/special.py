"""Ids of the special tokens, the same in every vocabulary attnmt builds."""

PAD_ID = 0  # padding; never attended, never predicted
UNK_ID = 1  # a token outside the vocabulary
BOS_ID = 2  # start of a target sentence: the first decoder input
EOS_ID = 3  # end of a sentence: the last decoder output

SPECIAL_TOKENS = ("<pad>", "<unk>", "<s>", "</s>")
