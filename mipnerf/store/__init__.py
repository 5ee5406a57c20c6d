"""What is kept on disk: checkpoints (`checkpoints`) with their integrity records (`integrity`), the
free-space checks (`disk_space`), Orbax's stderr quieted (`quiet_stderr`), and the package's cache
folder (`cache`).
"""
