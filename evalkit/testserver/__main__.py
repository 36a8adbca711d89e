from evalkit.testserver.server import main

main()
