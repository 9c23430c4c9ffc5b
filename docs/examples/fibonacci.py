"""A small file for `make demo`: the cursor goes on the empty line inside `fibonacci`."""


def fibonacci(n):
    
