"""Special cases of the program table: programs whose operands decide what they do."""
