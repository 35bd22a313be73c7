"""Publishing FAQ sets: the code → FAQ-set iteration (faqsets) and the static site on top of it."""
