from dockerbank.warm.client import main

main()
