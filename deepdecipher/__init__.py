"""deepdecipher: compute and serve what the MLP neurons of transformer language models do."""
