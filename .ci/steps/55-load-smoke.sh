# The load and fault run of the asyncio server, in its short form (bench/load.py --smoke):
# 1,000 idle connections, 100 echo clients for 5 s, 50 slowloris handshakes dropped at a 2 s
# open_timeout, then a peer that stops reading, a ping flood and a fragment flood, each with
# the server's memory bounded and a probe client served. The full run is documented in
# bench/README.md.
python bench/load.py --smoke
