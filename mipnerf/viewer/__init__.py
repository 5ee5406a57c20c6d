"""The web viewer on viser (`server`): the browser's camera (`browser_camera`) and the camera-path
panel (`path_panel`).
"""
