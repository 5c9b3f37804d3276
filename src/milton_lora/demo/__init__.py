"""Demo material, run from the installed package: the tiny random model builder, the sample conversation
history, and the `make demo` walk through the documented weekly loop. Nothing in the pipeline imports this package.
"""
