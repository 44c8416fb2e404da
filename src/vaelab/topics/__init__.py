"""Document models' numbers: perplexity and NPMI, topic mixtures of new documents, the LDA baseline."""
