"""A local GCS for tests: gcp-storage-emulator, with the generation semantics
tensorstore (orbax's array writer) relies on, and the settings that point
gcsfs (etils.epath), google-cloud-storage (tensorboardX) and tensorstore at it.

gcp-storage-emulator ignores ifGenerationMatch / ifGenerationNotMatch and
sends no x-goog-generation header on downloads; tensorstore then reads an
object's generation as missing and its next conditional write of an OCDBT
manifest fails ("Malformed StorageGeneration"). The two handlers are
wrapped below before the server module captures them.

  python tests/gcs_emulator.py PORT     # in memory, on 127.0.0.1:PORT
"""
from http import HTTPStatus
import os
import sys
import threading
import time

from gcp_storage_emulator.exceptions import NotFound
from gcp_storage_emulator.handlers import objects


def settings(port):
  """Environment that points every GCS client at the emulator."""
  url = f"http://127.0.0.1:{port}"
  return {
      "STORAGE_EMULATOR_HOST": url,            # google-cloud-storage, gcsfs
      "GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT": "false",  # no gRPC bucket probe
      "FSSPEC_GS_TOKEN": "anon", "FSSPEC_GCS_TOKEN": "anon",
      "TENSORSTORE_GCS_HTTP_URL": url,         # tensorstore's gcs driver
      "GOOGLE_AUTH_TOKEN_FOR_TESTING": "test",  # tensorstore: skip auth
  }


def _generation(storage, bucket, name):
  try:
    return str(storage.get_file_obj(bucket, name)["generation"])
  except NotFound:
    return None


def _download(original):
  def download(request, response, storage, *args, **kwargs):
    bucket, name = request.params["bucket_name"], request.params["object_id"]
    gen, query = _generation(storage, bucket, name), request.query
    if gen is not None:
      if query.get("ifGenerationMatch", [gen])[0] != gen:
        response.status = HTTPStatus.PRECONDITION_FAILED
        return
      if query.get("ifGenerationNotMatch", [None])[0] == gen:
        response.status = HTTPStatus.NOT_MODIFIED
        response["x-goog-generation"] = gen
        return
    original(request, response, storage, *args, **kwargs)
    if gen is not None and response.status in (HTTPStatus.OK,
                                               HTTPStatus.PARTIAL_CONTENT):
      response["x-goog-generation"] = gen
      response["x-goog-metageneration"] = str(
          storage.get_file_obj(bucket, name).get("metageneration", "1"))
  return download


def _insert(original):
  def insert(request, response, storage, *args, **kwargs):
    query = request.query
    if ("ifGenerationMatch" in query and "upload_id" not in query
        and "name" in query):
      want = query["ifGenerationMatch"][0]
      gen = _generation(storage, request.params["bucket_name"],
                        query["name"][0])
      if (gen is not None) if want == "0" else want != gen:
        response.status = HTTPStatus.PRECONDITION_FAILED
        response.json({"error": {"code": 412, "message": "conditionNotMet"}})
        return
    return original(request, response, storage, *args, **kwargs)
  return insert


objects.download = _download(objects.download)
objects.insert = _insert(objects.insert)


def _exit_with_parent():
  # The test process may still flush (tensorboardX uploads its event file
  # again at interpreter exit), so the emulator lives until its parent ends.
  parent = os.getppid()
  while os.getppid() == parent:
    time.sleep(1)
  os._exit(0)  # pylint: disable=protected-access


if __name__ == "__main__":
  from gcp_storage_emulator.server import create_server  # pylint: disable=g-import-not-at-top
  threading.Thread(target=_exit_with_parent, daemon=True).start()
  create_server("127.0.0.1", int(sys.argv[1]), in_memory=True).run()
