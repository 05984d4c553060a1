from linkplugin.cli import command

# Guarded: pool workers may import the main module (as "__mp_main__").
if __name__ == "__main__":
    command()
