"""Board entry point: copied to the board's root as main.py, run by MicroPython after boot.py."""


def main():
    import json

    from seismote.firmware.board_esp32 import Esp32Board
    from seismote.firmware.node import Node

    with open("/board.json") as f:
        profile = json.load(f)
    with open("/config.json") as f:
        cfg = json.load(f)
    Node(Esp32Board(profile), cfg).run()


if __name__ == "__main__":
    main()
