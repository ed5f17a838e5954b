"""What a candidate is: the operation vocabulary, search spaces and architecture sequences,
problems and their data, tensor signatures and the backend protocol."""
