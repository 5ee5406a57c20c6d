"""Pictures of export.py's files for the README, drawn from the files themselves: each is loaded
with trimesh, shown in a viser scene and captured by headless Chromium.

    python docs/render_exports.py exp/demo/export/pointcloud.ply docs/export_pointcloud.png
    python docs/render_exports.py exp/demo/export/mesh.ply docs/export_mesh.png
"""

import shutil
import sys
import time

import numpy as np
import trimesh
import viser
from playwright.sync_api import sync_playwright


def main(source: str, picture: str) -> None:
    loaded = trimesh.load(source, process=False)
    server = viser.ViserServer(host="127.0.0.1", port=0, verbose=False)
    server.gui.configure_theme(show_logo=False)
    server.gui.main_panel.dock_right()
    if isinstance(loaded, trimesh.PointCloud):
        server.scene.add_point_cloud("/file", np.asarray(loaded.vertices), np.asarray(loaded.colors)[:, :3],
                                     point_size=0.012)
    else:
        server.scene.add_mesh_trimesh("/file", loaded)
    server.initial_camera.position = (1.35, -1.5, 1.0)
    server.initial_camera.look_at = (0.0, 0.0, -0.2)
    server.initial_camera.up = (0.0, 0.0, 1.0)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=shutil.which("chromium"),
                                    args=["--use-angle=swiftshader", "--enable-unsafe-swiftshader", "--no-sandbox"])
        page = browser.new_page(viewport={"width": 820, "height": 420})
        page.goto(f"http://127.0.0.1:{server.get_port()}")
        time.sleep(8)
        close = page.locator(".mantine-Notification-closeButton")
        if close.count():
            close.first.click()
        time.sleep(2)
        page.screenshot(path=picture, clip=page.locator("canvas").first.bounding_box())
        browser.close()
    server.stop()


if __name__ == "__main__":
    main(*sys.argv[1:3])
