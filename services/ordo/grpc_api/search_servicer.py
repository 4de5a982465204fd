"""SearchService: text and image queries."""

from __future__ import annotations

import grpc

from ordo import limits
from ordo.app import AppContext
from ordo.core import vectors
from ordo.core.search import SearchPage
from ordo.errors import Reason
from ordo.grpc_api import convert
from ordo.grpc_api.status import handle_errors, invalid
from ordo.security.libraries import check_asset_id, readable_ids, scope_filter
from ordo.v1 import search_pb2, search_pb2_grpc


class SearchServicer(search_pb2_grpc.SearchServiceServicer):
    def __init__(self, ctx: AppContext) -> None:
        self.ctx = ctx

    def _hits(self, page: SearchPage) -> dict:
        """Bounded by bytes as well as by page_size: hits past the budget go to the next page."""
        hits = [convert.hit_pb(h) for h in page.hits]
        token = page.next_page_token
        fits = limits.within_budget(hits)
        if fits < len(hits) and page.request:
            hits, token = hits[:fits], page.token_after(page.hits[fits - 1].rank)
        answer = {"hits": hits, "next_page_token": token, "model_id": self.ctx.load_embedder().model_id}
        if page.total is not None:
            answer |= {"total_size": page.total.size, "total_size_capped": page.total.capped}
        return answer

    @handle_errors
    def SearchText(
        self, request: search_pb2.SearchTextRequest, context: grpc.ServicerContext
    ) -> search_pb2.SearchTextResponse:
        page = self.ctx.search_core().search_text(
            request.query,
            filter=scope_filter(convert.filter_from_pb(request.filter)),
            page_size=request.page_size,
            page_token=request.page_token,
            min_score=request.min_score,
            mode=convert.search_mode_from_pb(request.mode),
            with_total=request.include_total_size,
        )
        return search_pb2.SearchTextResponse(**self._hits(page))

    @handle_errors
    def SearchImage(
        self, request: search_pb2.SearchImageRequest, context: grpc.ServicerContext
    ) -> search_pb2.SearchImageResponse:
        query = request.WhichOneof("query")
        options = {
            "filter": scope_filter(convert.filter_from_pb(request.filter)),
            "page_size": request.page_size,
            "page_token": request.page_token,
            "min_score": request.min_score,
            "with_total": request.include_total_size,
        }
        if query == "image":
            page = self.ctx.search_core().search_image(request.image, **options)
        elif query == "asset_id":
            self.ctx.catalog.check_id(request.asset_id)
            check_asset_id(self.ctx.catalog, request.asset_id)
            page = self.ctx.search_core().search_asset(request.asset_id, exclude_self=request.exclude_self, **options)
        else:
            invalid(context, "give either image bytes or an asset_id", Reason.MISSING_QUERY)
        return search_pb2.SearchImageResponse(**self._hits(page))

    @handle_errors
    def EmbedTexts(
        self, request: search_pb2.EmbedTextsRequest, context: grpc.ServicerContext
    ) -> search_pb2.EmbedTextsResponse:
        matrix = vectors.embed_texts(self.ctx.load_embedder(), list(request.texts))
        return search_pb2.EmbedTextsResponse(
            vectors=[search_pb2.EmbeddingVector(values=row.tolist()) for row in matrix],
            model_id=self.ctx.load_embedder().model_id,
            dim=int(matrix.shape[1]),
        )

    @handle_errors
    def GetImageVectors(
        self, request: search_pb2.GetImageVectorsRequest, context: grpc.ServicerContext
    ) -> search_pb2.GetImageVectorsResponse:
        allowed, hidden = readable_ids(self.ctx.catalog, list(request.asset_ids))
        found, missing = vectors.image_vectors(self.ctx.active_index(), allowed)
        missing = [*missing, *hidden]
        return search_pb2.GetImageVectorsResponse(
            vectors=[
                search_pb2.AssetVector(asset_id=asset_id, vector=search_pb2.EmbeddingVector(values=vector.tolist()))
                for asset_id, vector in found.items()
            ],
            missing_asset_ids=missing,
            model_id=self.ctx.load_embedder().model_id,
        )
