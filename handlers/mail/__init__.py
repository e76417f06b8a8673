"""The mail library: reading mail as its writer wrote it, and composing our own.

Reading: ``charset`` turns bytes into Unicode (declared charset, supersets, detection),
``headers`` decodes raw and encoded-word headers, addresses, dates and ids, ``parts`` decodes
MIME leaf parts and names attachments safely, ``text`` turns HTML into clean text and finds the
new part of a reply, ``repair`` restores a header block or MIME parameters the stdlib parser
could not read, ``policy`` is the ``policy.default`` every reader parses with, and ``parsed``
holds what the parse step reads out of a message (``ParsedMail``). Composing:
``compose`` builds the acknowledgements, replies and digests we send. Nothing here opens a socket
or touches the database; the pipeline steps (``handlers.parse``, ``handlers.loop_guard``,
``handlers.acknowledge``) and the workers use these modules directly.
"""
