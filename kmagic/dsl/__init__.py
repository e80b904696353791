"""The kmodel language: grammar, parser, AST and checker. Nothing here imports Keras."""
