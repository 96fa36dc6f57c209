"""``/campaigns``: one source dubbed into several languages (a ``prepare`` job, then one job per language)."""

from __future__ import annotations

from fastapi import APIRouter
from sqlalchemy import select

from ..db import ACTIVE, Campaign, Job, new_id, utcnow
from ..deps import QueueDep, SessionDep, SettingsDep, UserDep, own_campaign, own_source
from ..jobs import PREPARE_UNTIL
from ..schemas import ID, CampaignCreate, CampaignOut
from ..views import campaign_out
from .jobs import checked_languages

router = APIRouter(tags=["campaigns"])
NOT_FOUND = {404: {"description": "not found"}}


@router.post("/campaigns", status_code=201, response_model=CampaignOut, responses={404: {"description": "no such source"}})
def create_campaign(body: CampaignCreate, user: UserDep, settings: SettingsDep, s: SessionDep, queue: QueueDep) -> CampaignOut:
    """Dub a source into several languages: the language-independent stages run once (the
    ``prepare`` job), then one job per language, in parallel. Every language must be reachable by
    the installed translators (422 naming those that are not, and what is installed)."""
    own_source(s, body.source_id, user)
    langs = checked_languages(settings, body.options, body.languages)
    cid = new_id()
    opts = body.options.model_dump()
    camp = Campaign(id=cid, user_id=user.id, source_id=body.source_id, languages=langs, options=opts)
    prep = Job(id=new_id(), user_id=user.id, source_id=body.source_id, campaign_id=cid, kind="prepare", language=None,
               project=f"projects/{cid}/shared", options=opts, until=PREPARE_UNTIL, state="queued")
    s.add(camp)
    s.flush()
    s.add(prep)
    for L in langs:
        s.add(Job(id=new_id(), user_id=user.id, source_id=body.source_id, campaign_id=cid, kind="dub", language=L,
                  project=f"projects/{cid}/{L}", options=opts, state="waiting"))
    s.commit()
    queue.submit(prep.id)
    return campaign_out(s, settings, camp)


@router.get("/campaigns/{campaign_id}", response_model=CampaignOut, responses=NOT_FOUND)
def get_campaign(campaign_id: ID, user: UserDep, settings: SettingsDep, s: SessionDep) -> CampaignOut:
    """The campaign's state (the most active of its jobs) and its jobs: ``prepare`` then one per language."""
    return campaign_out(s, settings, own_campaign(s, campaign_id, user))


@router.post("/campaigns/{campaign_id}/cancel", response_model=CampaignOut, responses=NOT_FOUND)
def cancel_campaign(campaign_id: ID, user: UserDep, settings: SettingsDep, s: SessionDep) -> CampaignOut:
    """Cancel every unfinished job of the campaign (running ones stop at their next progress event)."""
    c = own_campaign(s, campaign_id, user)
    for job in s.scalars(select(Job).where(Job.campaign_id == c.id, Job.state.in_(ACTIVE))).all():
        if job.state == "running":
            job.cancel_requested = True
        else:
            job.state, job.finished_at = "cancelled", utcnow()
    s.commit()
    return campaign_out(s, settings, c)
