print("Hello, World! This greeting comes from a Python container built and run by berth.")
