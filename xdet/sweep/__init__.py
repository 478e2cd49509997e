"""The sweep over the paper's configuration matrix: the matrix and shards, and running it resumably."""
