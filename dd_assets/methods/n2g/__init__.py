"""Neuron to Graph (N2G): a token trie per neuron that predicts when the neuron fires.

The pure parts (tries, lines, evaluation, export, similarity) take token strings and arrays; only
`engine` touches a model, through a callable that returns one neuron's activations per sequence.
"""
